"""Evaluation of MetaMimic policies: one-shot imitation and task performance.

Two protocols (paper section 4, figures 5 and 8):

- One-shot imitation: for each demonstration d, start the simulator at d's first
  physics state (`ImitationEnvironment.reset_to_demo`) and follow d once with
  the greedy imitation policy pi(o_t, d_{t+1}). Per demo we record the
  imitation reward of every step (eq. 2), the task reward, and whether the brick
  ended stacked. `imitation_metrics` summarises a set of such rollouts against
  their demos; running it on held-out (style B) and training (style A) demos
  gives the generalization gap (`generalization_gap`).
- Task policy vs demonstrator: from each demo's first physics state run the
  greedy task policy pi(o_t) for the environment's episode length and compare
  its task return and frames-to-stack with the demo's (`task_metrics`).

Rollout collection (`follow_demo`, `run_task_policy`) needs MuJoCo and a policy;
the metric functions are pure: they take `Rollout`s and `Demonstration`s (or
anything with `rewards`, `success` and `__len__`) and return plain dicts.

Restoring policies: `restore_policy_networks` rebuilds a preset's networks and
restores the `policy` and `observation` entries of the learner checkpoints that
`DistributedMetaMimic` writes (`<workdir>/checkpoints/<label>`, Acme's
`CheckpointingRunner(key='learner')` over `learning.D4PGLearner.state`).
A run made with `--config` overrides of the fields that shape the networks
(`config.NETWORK_FIELDS`, e.g. `goal_delta_scale`) is restored into networks
built with them (`network_overrides`, from the run's run.json); its other
overrides (reward scales, termination) are not applied, so that every run is
measured with the preset's eq. 2.
"""

import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from acme import specs
from acme.agents.tf import actors
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import presets
from acme_metamimic import workdirs
from acme_metamimic.demonstrations import dataset
from acme_metamimic.environments import imitation
from acme_metamimic.environments import jaco_stack
import dm_env
import numpy as np
import tensorflow as tf

IMITATION_LEARNER = 'imitation_learner'
TASK_LEARNER = 'task_learner'
STACK_REWARD = jaco_stack.REWARD_STACK

Policy = Callable[[object], np.ndarray]


@dataclasses.dataclass
class Rollout:
  """One evaluation episode.

  Attributes:
    task_rewards: [T] task reward after each action.
    imitation_rewards: [T] eq. 2 reward after each action (empty for task
      policy rollouts, which have no goal).
    success: whether the brick was stacked at the end of the rollout.
    demo_id: the demonstration this rollout started from (and followed).
    early_terminated: whether the imitation rollout ended by early termination.
    physics_states: [T+1, S] states, kept only when asked (videos).
    hand_to_brick: [T+1] distance (m) from the pinch site to the free brick's
      centre (the `hand_to_target` observation), task policy rollouts only.
  """

  task_rewards: np.ndarray
  imitation_rewards: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros(0))
  success: bool = False
  demo_id: int = -1
  early_terminated: bool = False
  physics_states: Optional[np.ndarray] = None
  hand_to_brick: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros(0))

  def __len__(self) -> int:
    return int(np.asarray(self.task_rewards).shape[0])


# Pure metrics.


def frames_to_stack(task_rewards: Sequence[float],
                    stack_reward: float = STACK_REWARD) -> Optional[int]:
  """Number of actions until the task reward first reaches `stack_reward`.

  None if it never does. The reward at index t follows action t, so stacking
  after the first action gives 1.
  """
  rewards = np.asarray(task_rewards, np.float64)
  hits = np.flatnonzero(rewards >= stack_reward)
  return int(hits[0]) + 1 if hits.size else None


def _mean(values) -> float:
  values = [v for v in values if v is not None]
  return float(np.mean(values)) if values else float('nan')


def _demo_steps(demo) -> int:
  """Number of actions (rewards) of a demo: frames - 1."""
  return int(np.asarray(demo.rewards).shape[0])


def imitation_metrics(rollouts: Sequence[Rollout],
                      demos: Sequence[dataset.Demonstration],
                      max_imitation_reward: Optional[float] = None
                      ) -> Dict[str, float]:
  """Summarises one-shot imitation rollouts, rollout i following demos[i].

  Returns:
    num_episodes.
    imitation_return: mean over rollouts of the summed eq. 2 reward.
    imitation_reward_per_step: mean over rollouts of the summed reward divided
      by the demo's number of steps (an early-terminated rollout earns 0 for
      the steps it missed).
    imitation_reward_normalized: the same divided by `max_imitation_reward`
      (beta1 + beta2), in [0, 1]; only if `max_imitation_reward` is given.
    task_return: mean summed task reward of the rollouts.
    demo_task_return: mean summed task reward of the demos.
    task_return_pct_of_demo: mean over rollouts of 100 * rollout task return /
      its demo's task return, over demos with a positive return (the paper's
      "task reward as % of the demonstration"; NaN if none has).
    success_rate: fraction of rollouts that ended stacked.
    demo_success_rate: fraction of demos that ended stacked.
    early_termination_rate: fraction of rollouts ended by early termination.
    completion: mean fraction of the demo's steps the rollout followed.
  """
  if len(rollouts) != len(demos):
    raise ValueError(f'{len(rollouts)} rollouts for {len(demos)} demos.')
  if not rollouts:
    raise ValueError('No rollouts to evaluate.')
  imitation_returns, per_step, percentages, completion = [], [], [], []
  for rollout, demo in zip(rollouts, demos):
    steps = max(_demo_steps(demo), 1)
    total = float(np.sum(rollout.imitation_rewards))
    imitation_returns.append(total)
    per_step.append(total / steps)
    completion.append(min(len(rollout) / steps, 1.))
    demo_return = float(np.sum(demo.rewards))
    if demo_return > 0:
      percentages.append(100. * float(np.sum(rollout.task_rewards)) /
                         demo_return)
  metrics = dict(
      num_episodes=float(len(rollouts)),
      imitation_return=_mean(imitation_returns),
      imitation_reward_per_step=_mean(per_step),
      task_return=_mean([np.sum(r.task_rewards) for r in rollouts]),
      demo_task_return=_mean([np.sum(d.rewards) for d in demos]),
      task_return_pct_of_demo=_mean(percentages),
      success_rate=_mean([float(r.success) for r in rollouts]),
      demo_success_rate=_mean([float(d.success) for d in demos]),
      early_termination_rate=_mean([float(r.early_terminated)
                                    for r in rollouts]),
      completion=_mean(completion),
  )
  if max_imitation_reward:
    metrics['imitation_reward_normalized'] = (
        metrics['imitation_reward_per_step'] / max_imitation_reward)
  return metrics


def task_metrics(rollouts: Sequence[Rollout],
                 demos: Sequence[dataset.Demonstration]) -> Dict[str, float]:
  """Task policy rollouts vs the demos they started from (rollout i: demos[i]).

  Returns:
    num_episodes.
    task_return / demo_task_return: mean summed task reward over the whole
      rollout / demo.
    task_return_at_demo_length: mean summed task reward of the rollout's first
      len(demo) - 1 steps (same horizon as the demo).
    task_return_pct_of_demo: mean of 100 * task_return_at_demo_length / demo
      return over demos with a positive return.
    success_rate / demo_success_rate: fraction ended stacked.
    frames_to_stack / demo_frames_to_stack: mean over the episodes that
      stacked (NaN if none did).
    stacked_faster_rate: fraction of demos the policy stacked in strictly
      fewer frames than the demo (a policy that never stacks never counts;
      one that stacks when the demo did not always does).
    reach_rate: fraction of rollouts with any task reward (the first stage,
      the hand within `jaco_stack.REACH_DISTANCE` of the brick).
    lift_rate: fraction of rollouts that reached the lift stage (a task
      reward of at least `jaco_stack.REWARD_LIFT`: the brick held above the
      table) at some step.
    closest_approach_m / demo_closest_approach_m: mean over episodes of the
      smallest hand-to-brick distance; a diagnostic below the sparse reward's
      resolution (only when every rollout / demo has the distances).
  """
  if len(rollouts) != len(demos):
    raise ValueError(f'{len(rollouts)} rollouts for {len(demos)} demos.')
  if not rollouts:
    raise ValueError('No rollouts to evaluate.')
  at_demo_length, percentages, faster = [], [], []
  policy_frames, demo_frames = [], []
  for rollout, demo in zip(rollouts, demos):
    steps = _demo_steps(demo)
    rewards = np.asarray(rollout.task_rewards, np.float64)
    truncated = float(np.sum(rewards[:steps]))
    at_demo_length.append(truncated)
    demo_return = float(np.sum(demo.rewards))
    if demo_return > 0:
      percentages.append(100. * truncated / demo_return)
    mine, theirs = frames_to_stack(rewards), frames_to_stack(demo.rewards)
    policy_frames.append(mine)
    demo_frames.append(theirs)
    faster.append(float(mine is not None and
                        (theirs is None or mine < theirs)))
  closest = {}
  if all(len(r.hand_to_brick) for r in rollouts):
    closest['closest_approach_m'] = _mean(
        [np.min(r.hand_to_brick) for r in rollouts])
  if all('hand_to_target' in d.observations for d in demos):
    closest['demo_closest_approach_m'] = _mean(
        [np.min(np.linalg.norm(d.observations['hand_to_target'], axis=-1))
         for d in demos])
  return dict(
      num_episodes=float(len(rollouts)),
      task_return=_mean([np.sum(r.task_rewards) for r in rollouts]),
      demo_task_return=_mean([np.sum(d.rewards) for d in demos]),
      task_return_at_demo_length=_mean(at_demo_length),
      task_return_pct_of_demo=_mean(percentages),
      success_rate=_mean([float(r.success) for r in rollouts]),
      demo_success_rate=_mean([float(d.success) for d in demos]),
      frames_to_stack=_mean(policy_frames),
      demo_frames_to_stack=_mean(demo_frames),
      stacked_faster_rate=_mean(faster),
      reach_rate=_mean([float(np.any(np.asarray(r.task_rewards) > 0))
                        for r in rollouts]),
      lift_rate=_mean([float(np.any(np.asarray(r.task_rewards) >=
                                    jaco_stack.REWARD_LIFT))
                       for r in rollouts]),
      **closest,
  )


def generalization_gap(train: Dict[str, float],
                       validation: Dict[str, float],
                       keys: Sequence[str] = (
                           'imitation_return', 'imitation_reward_per_step',
                           'task_return_pct_of_demo', 'success_rate')
                       ) -> Dict[str, float]:
  """train - validation for each key present in both."""
  return {k: float(train[k] - validation[k]) for k in keys
          if k in train and k in validation}


# Rollouts (need MuJoCo).


def follow_demo(environment: imitation.ImitationEnvironment,
                policy: Policy,
                demo: dataset.Demonstration,
                reward: Callable[[object, object], float],
                keep_states: bool = False) -> Rollout:
  """Follows `demo` once from its first frame with `policy`.

  Args:
    environment: an `ImitationEnvironment` (its early-termination rule
      applies; build it with mode 'none' to always follow the whole demo).
    policy: goal-conditioned observation -> action (greedy for evaluation).
    demo: the demo to follow.
    reward: eq. 2, `rewards.ImitationReward`.
    keep_states: also return the physics states (for videos).
  """
  timestep = environment.reset_to_demo(demo, 0)
  inner = environment.environment
  states = [imitation.get_state(inner)] if keep_states else None
  task_rewards, imitation_rewards = [], []
  t = 0
  while not timestep.last():
    timestep = environment.step(policy(timestep.observation))
    t += 1
    task_rewards.append(float(timestep.reward))
    imitation_rewards.append(
        reward(timestep.observation[imitation.OBSERVATION], demo.frame(t)))
    if keep_states:
      states.append(imitation.get_state(inner))
  return Rollout(
      task_rewards=np.asarray(task_rewards),
      imitation_rewards=np.asarray(imitation_rewards),
      success=_stacked(inner, task_rewards),
      demo_id=int(demo.episode_id),
      early_terminated=bool(environment.episode_metrics.get(
          'early_terminated', 0.)),
      physics_states=np.asarray(states) if keep_states else None)


def run_task_policy(environment: dm_env.Environment,
                    policy: Policy,
                    demo: dataset.Demonstration,
                    max_steps: Optional[int] = None,
                    keep_states: bool = False) -> Rollout:
  """Runs the task policy from `demo`'s first physics state until the episode
  ends (the environment's episode length) or `max_steps` actions."""
  timestep = imitation.reset_to_state(environment, demo.physics_states[0])
  states = [imitation.get_state(environment)] if keep_states else None
  task_rewards, distances = [], []

  def record_distance(observation):
    if 'hand_to_target' in observation:
      distances.append(float(np.linalg.norm(observation['hand_to_target'])))

  record_distance(timestep.observation)
  while not timestep.last() and (max_steps is None or
                                 len(task_rewards) < max_steps):
    timestep = environment.step(policy(timestep.observation))
    task_rewards.append(float(timestep.reward))
    record_distance(timestep.observation)
    if keep_states:
      states.append(imitation.get_state(environment))
  return Rollout(
      task_rewards=np.asarray(task_rewards),
      success=_stacked(environment, task_rewards),
      demo_id=int(demo.episode_id),
      physics_states=np.asarray(states) if keep_states else None,
      hand_to_brick=np.asarray(distances))


def _stacked(environment, task_rewards) -> bool:
  if hasattr(environment, 'success'):
    return bool(environment.success)
  return bool(task_rewards) and task_rewards[-1] >= STACK_REWARD


# Policies.


def make_greedy_policy(networks, spec: specs.EnvironmentSpec) -> Policy:
  """observation -> greedy action, through Acme's FeedForwardActor."""
  actor = actors.FeedForwardActor(networks.make_policy(spec, 0.))
  return actor.select_action


def build_networks(preset: str, config: config_lib.MetaMimicConfig,
                   environment_spec: specs.EnvironmentSpec):
  """(imitation networks, task networks) of a preset, variables created."""
  imitation_spec = imitation.imitation_environment_spec(environment_spec)
  imitation_networks = presets.make_networks(preset, config, environment_spec,
                                             goal_conditioned=True)
  imitation_networks.init(imitation_spec)
  task_networks = presets.make_networks(preset, config, environment_spec,
                                        goal_conditioned=False)
  task_networks.init(environment_spec)
  return imitation_networks, task_networks


# What the network fields were for every preset before run.json recorded
# them (`network_config`, from session 18 on, when features_config() took
# goal deltas with the skip): the paper's encoding.
_NETWORK_DEFAULTS_BEFORE_RECORDING = dict(goal_delta_scale=None,
                                          goal_delta_skip=False)
# Network fields added after that, with the value every run had before each
# existed (a run.json that does not name one was recorded without it).
_NETWORK_FIELDS_ADDED_SINCE = dict(task_joint_velocities=True)


def network_overrides(workdir: str) -> Dict[str, Any]:
  """The run's values of `config.NETWORK_FIELDS`, as config overrides.

  Read from <workdir>/run.json: its `network_config` (every network field's
  value, recorded by run_local's signature), or, in a workdir recorded before
  that, its `config_overrides` of those fields over the encoding every
  preset had then; a field added since that the file does not name gets
  the value every run had before it existed. Empty for a workdir without
  run.json.
  """
  path = os.path.join(workdir, workdirs.RUN_FILE)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    recorded = json.load(f)
  if 'network_config' in recorded:
    values = {**_NETWORK_FIELDS_ADDED_SINCE, **recorded['network_config']}
  else:
    values = {**_NETWORK_DEFAULTS_BEFORE_RECORDING,
              **_NETWORK_FIELDS_ADDED_SINCE,
              **(recorded.get('config_overrides') or {})}
  return {name: value for name, value in sorted(values.items())
          if name in config_lib.NETWORK_FIELDS}


def checkpoint_directory(workdir: str, label: str) -> str:
  return os.path.join(workdir, 'checkpoints', label)


# A learner checkpoint's policies: 'target' is what Acme's D4PG learner
# gives actors and evaluators (`get_variables('policy')`), 'online' what it
# trains; the target copies the online every `target_update_period` steps.
CHECKPOINT_NETWORKS = ('target', 'online')


def learner_checkpoint_key(name: str, networks_kind: str) -> str:
  """The `D4PGLearner.state` key of network `name` ('policy', 'critic',
  'observation') of `networks_kind` (`CHECKPOINT_NETWORKS`)."""
  if networks_kind not in CHECKPOINT_NETWORKS:
    raise ValueError(f'networks_kind {networks_kind!r}: expected one of '
                     f'{CHECKPOINT_NETWORKS}.')
  return f'target_{name}' if networks_kind == 'target' else name


def restore_learner_entries(workdir: str, label: str,
                            entries: Dict[str, Any]) -> None:
  """Restores `entries` (state key -> module or variable) of a learner's
  latest checkpoint, `tf.train.Checkpoint(learner=D4PGLearner.state)`; every
  entry must be there, the rest is ignored.

  Raises:
    FileNotFoundError: if the directory holds no checkpoint.
  """
  directory = checkpoint_directory(workdir, label)
  latest = tf.train.latest_checkpoint(directory)
  if latest is None:
    raise FileNotFoundError(f'No checkpoint under {directory}.')
  status = tf.train.Checkpoint(learner=entries).restore(latest)
  status.assert_existing_objects_matched().expect_partial()


def restore_policy_networks(networks, workdir: str, label: str,
                            networks_kind: str = 'target') -> int:
  """Restores a learner checkpoint's policy and observation networks.

  Only the policy and observation entries of `networks_kind`
  (`CHECKPOINT_NETWORKS`: `target_policy` or `policy`, ...) are read, plus
  `num_steps`, which is returned. By default the target networks, so that a
  final evaluation measures the policy the evaluator's curves measured.

  Raises:
    FileNotFoundError: if the directory holds no checkpoint.
  """
  num_steps = tf.Variable(0, dtype=tf.int32)
  restore_learner_entries(workdir, label, {
      learner_checkpoint_key('policy', networks_kind): networks.policy_network,
      learner_checkpoint_key('observation', networks_kind):
          networks.observation_network,
      'num_steps': num_steps,
  })
  return int(num_steps.numpy())


# Whole protocol.


def evaluate_imitation(environment: jaco_stack.JacoStack,
                       imitation_policy: Policy,
                       builder: builder_lib.MetaMimicBuilder,
                       demos: Sequence[dataset.Demonstration],
                       keep_states: bool = False):
  """One-shot imitation of every demo; returns (metrics, rollouts)."""
  env = builder.make_imitation_environment(environment, demos, seed=0,
                                           curriculum=False)
  reward = builder.make_imitation_reward()
  rollouts = [follow_demo(env, imitation_policy, demo, reward, keep_states)
              for demo in demos]
  return imitation_metrics(rollouts, demos, reward.maximum), rollouts


def evaluate_task(environment: dm_env.Environment, task_policy: Policy,
                  demos: Sequence[dataset.Demonstration],
                  max_steps: Optional[int] = None, keep_states: bool = False):
  """Task policy from every demo's start; returns (metrics, rollouts)."""
  rollouts = [run_task_policy(environment, task_policy, demo, max_steps,
                              keep_states) for demo in demos]
  return task_metrics(rollouts, demos), rollouts


def headline(metrics: Dict[str, Dict[str, float]]) -> List[str]:
  """The fidelity issue's figures from evaluate.py's metrics, one per line.

  Imitation of each demo set: eq. 2 reward per step and the task reward as
  % of the demos'; the task policy from each set's start states: its reach,
  lift and stack rates. Splits absent from `metrics` are left out.
  """
  lines = []
  for split, what in (('validation', 'held-out demos'),
                      ('train', 'training demos')):
    imitation = metrics.get(f'imitation_{split}')
    if imitation:
      lines.append(
          f'imitation, {what:16s} eq. 2 reward/step '
          f'{imitation["imitation_reward_per_step"]:.3f}, task reward '
          f'{imitation["task_return_pct_of_demo"]:.1f} % of the demos\' '
          f'({_demos(imitation["num_episodes"])})')
  for split, what in (('validation', 'held-out starts'),
                      ('train', 'training starts')):
    task = metrics.get(f'task_policy_{split}')
    if task:
      lines.append(
          f'task policy, {what:15s} reach {task["reach_rate"]:.0%}, lift '
          f'{task["lift_rate"]:.0%}, stack {task["success_rate"]:.0%} of '
          f'{task["num_episodes"]:.0f}')
  return lines


def _demos(count: float) -> str:
  return f'{count:.0f} demo' + ('' if count == 1 else 's')


def summarize(metrics_by_name: Dict[str, Dict[str, float]]) -> List[str]:
  """A Markdown table, one row per evaluation, one column per metric."""
  keys: List[str] = []
  for metrics in metrics_by_name.values():
    keys += [k for k in metrics if k not in keys]
  lines = ['| evaluation | ' + ' | '.join(keys) + ' |',
           '|---' * (len(keys) + 1) + '|']
  for name, metrics in metrics_by_name.items():
    cells = [f'{metrics[k]:.3g}' if k in metrics else '' for k in keys]
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  return lines
