"""Whether the task learner can use the imitation experience it is fed.

Issue 33 ("The task policy learns from imitation experience"): in the
60-minute run with hindsight inverse dynamics (docs/fidelity.md, "Session
18") the imitation policy stacked in 8 of 10 training demos and 99 % of the
imitation actors' logged episodes earned task reward, yet the task policy
reached the brick from 3 of 10 held-out starts and lifted from none. This
module asks where that experience is lost, in minutes, on a run's restored
networks. Every probe runs along the imitation policy's own greedy rollouts
of demos (`follow_with_states`), which is the experience the task table
holds, minus the exploration noise.

- `value_probe`: the task critic at the visited states, with the imitation
  policy's action and with the task policy's own. Does Q follow the true
  discounted task return-to-go of the rollout (Spearman over states)? Does
  the critic prefer the action that went on to earn task reward to the task
  policy's action (the DPG update moves the task policy toward what the
  critic prefers)? How far is the task policy's action from it?
- `handover_probe`: the task policy started at the rollout's first state of
  each stage (reached, lifted) and run for `steps` actions. A task policy
  that finishes from a lifted state but not from the start lacks only the
  early phase; one that drops the brick from a lifted state has not learned
  the later phases either.
- `fit_task_policy_to_imitation` (`diagnose_task(fit_steps=...)`): fresh
  task networks (any encoding: `fit_config`) regress, on the task
  observations of noisy imitation rollouts (`collect_imitation_actions`),
  the greedy imitation policy's action, and the fitted task policy is then
  evaluated from the demos' starts like the real one. What a task policy of
  this architecture could take from this experience by regression alone, in
  minutes: the counterpart of issue 32's fit probes. It is a probe, never a
  training path.

Apart from that fit, no probe trains anything; "true" returns come from the
simulator's task reward, never from the networks. `diagnose_task` runs them
and returns one JSON-able dict; `launch/diagnose.py --learner=task` is its
command line.
"""

import dataclasses
import time
from typing import Any, Dict, List, Optional, Sequence

from acme import specs
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import diagnostics
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic.demonstrations import dataset
from acme_metamimic.environments import imitation
from acme_metamimic.environments import jaco_stack
import numpy as np
import tensorflow as tf

Policy = evaluation.Policy

# The task reward's stages (jaco_stack): the rollout state at which each is
# first reached is where `handover_probe` hands over to the task policy.
STAGES = dict(reached=jaco_stack.REWARD_REACH, lifted=jaco_stack.REWARD_LIFT)


@dataclasses.dataclass
class ImitationPath:
  """One greedy imitation rollout of a demo, with what the probes need.

  Attributes:
    demo_id: the demo followed.
    observations: [T] task observations (the imitation observation's
      'observation' part) before each action.
    actions: [T] the imitation policy's actions.
    task_rewards: [T] task reward after each action.
    physics_states: [T] exact states before each action.
  """

  demo_id: int
  observations: List[Dict[str, np.ndarray]]
  actions: np.ndarray
  task_rewards: np.ndarray
  physics_states: np.ndarray


def follow_with_states(environment: imitation.ImitationEnvironment,
                       policy: Policy,
                       demo: dataset.Demonstration) -> ImitationPath:
  """Follows `demo` from its first frame with the greedy imitation policy."""
  timestep = environment.reset_to_demo(demo, 0)
  inner = environment.environment
  observations, actions, rewards, states = [], [], [], []
  while not timestep.last():
    action = policy(timestep.observation)
    observations.append(timestep.observation[imitation.OBSERVATION])
    states.append(imitation.get_state(inner))
    actions.append(action)
    timestep = environment.step(action)
    rewards.append(float(timestep.reward))
  return ImitationPath(int(demo.episode_id), observations, np.stack(actions),
                       np.asarray(rewards), np.stack(states))


def returns_to_go(rewards: np.ndarray, discount: float) -> np.ndarray:
  """G_t = sum_k discount^k r_{t+k}, truncated at the rollout's end."""
  returns = np.zeros(len(rewards))
  running = 0.
  for t in reversed(range(len(rewards))):
    running = rewards[t] + discount * running
    returns[t] = running
  return returns


def value_probe(paths: Sequence[ImitationPath], critic: diagnostics.Critic,
                task_policy: Policy, discount: float,
                stride: int = 5) -> Dict[str, float]:
  """The task critic along imitation rollouts (every `stride`-th state).

  Returns:
    q_vs_return: Spearman correlation, over all probed states, of
      Q(o, imitation action) with the true discounted return-to-go.
    q_imitation_action / q_task_action: mean Q of each action.
    return_to_go: mean true return-to-go; rewarding_states: the share of
      probed states with a positive one.
    q_prefers_imitation_action: at the states with positive return-to-go,
      the share where Q(o, imitation action) > Q(o, task policy's action).
    action_distance: at those states, the mean Euclidean distance between
      the two actions (the action box is [-1, 1]^9).
    num_states: states probed.
  """
  q_imitation, q_task, returns, distances = [], [], [], []
  for path in paths:
    path_returns = returns_to_go(path.task_rewards, discount)
    for t in range(0, len(path.task_rewards), stride):
      observation = path.observations[t]
      own = task_policy(observation)
      q_imitation.append(critic(observation, path.actions[t]))
      q_task.append(critic(observation, own))
      returns.append(path_returns[t])
      distances.append(float(np.linalg.norm(own - path.actions[t])))
  q_imitation, q_task, returns, distances = map(
      np.asarray, (q_imitation, q_task, returns, distances))
  rewarding = returns > 0.
  return dict(
      q_vs_return=diagnostics.spearman(q_imitation, returns),
      q_imitation_action=float(np.mean(q_imitation)),
      q_task_action=float(np.mean(q_task)),
      return_to_go=float(np.mean(returns)),
      rewarding_states=float(np.mean(rewarding)),
      q_prefers_imitation_action=(
          float(np.mean(q_imitation[rewarding] > q_task[rewarding]))
          if rewarding.any() else float('nan')),
      action_distance=(float(np.mean(distances[rewarding]))
                       if rewarding.any() else float('nan')),
      num_states=float(len(returns)))


def handover_probe(environment, paths: Sequence[ImitationPath],
                   task_policy: Policy, steps: int) -> Dict[str, Any]:
  """The task policy from each rollout's first state of each stage.

  Returns, per stage in `STAGES`: handovers (rollouts that reached the
  stage), and over those: the share where the task policy's own `steps`
  actions keep the stage's reward at the end (`holds`), lift (`lifts`,
  reward >= the lifted stage at some step) and stack (`stacks`), and its
  mean task return over the `steps` actions next to the imitation policy's
  over the same steps (`task_return`, `imitation_task_return`).
  """
  results = {}
  for stage, threshold in STAGES.items():
    holds, lifts, stacks, own, theirs = [], [], [], [], []
    for path in paths:
      reached = np.flatnonzero(path.task_rewards >= threshold)
      if not reached.size:
        continue
      start = int(reached[0]) + 1  # The state after the first such action.
      if start >= len(path.task_rewards):
        continue
      timestep = imitation.reset_to_state(environment,
                                          path.physics_states[start])
      rewards = []
      while not timestep.last() and len(rewards) < steps:
        timestep = environment.step(task_policy(timestep.observation))
        rewards.append(float(timestep.reward))
      rewards = np.asarray(rewards)
      holds.append(rewards[-1] >= threshold)
      lifts.append(rewards.max() >= jaco_stack.REWARD_LIFT)
      stacks.append(rewards.max() >= jaco_stack.REWARD_STACK)
      own.append(rewards.sum())
      theirs.append(path.task_rewards[start:start + len(rewards)].sum())
    mean = lambda values: float(np.mean(values)) if values else float('nan')
    results[stage] = dict(
        handovers=float(len(holds)), holds=mean(holds), lifts=mean(lifts),
        stacks=mean(stacks), task_return=mean(own),
        imitation_task_return=mean(theirs))
  return dict(results, steps=float(steps))


def collect_imitation_actions(environment: imitation.ImitationEnvironment,
                              demos: Sequence[dataset.Demonstration],
                              policy: Policy, sigma: Any,
                              episodes_per_demo: int,
                              rng: np.random.Generator):
  """(task observations, greedy imitation actions) along noisy rollouts.

  Each demo is followed whole `episodes_per_demo` times (`environment`
  should not end episodes early) by the imitation policy plus the actors'
  clipped Gaussian noise `sigma`; each visited state is labelled with the
  policy's greedy action there, so that the labels also cover states off
  the greedy path.
  """
  observations, actions = [], []
  for demo in demos:
    for _ in range(episodes_per_demo):
      timestep = environment.reset_to_demo(demo, 0)
      while not timestep.last():
        action = policy(timestep.observation)
        observations.append(timestep.observation[imitation.OBSERVATION])
        actions.append(action)
        timestep = environment.step(np.clip(
            action + rng.normal(0., sigma, np.shape(action)), -1.,
            1.).astype(np.float32))
  stacked = tf.nest.map_structure(lambda *x: np.stack(x), *observations)
  return stacked, np.stack(actions)


def fit_task_policy_to_imitation(networks, observations, actions,
                                 steps: int, learning_rate: float,
                                 batch_size: int,
                                 seed: int) -> Dict[str, float]:
  """Regresses a task policy (and its observation network) on the actions.

  Squared error summed over action dimensions, Adam; returns the first and
  last hundred steps' mean loss.
  """
  first, last = diagnostics.regress_policy(
      networks, networks.observation_network.trainable_variables +
      networks.policy_network.trainable_variables, observations, actions,
      steps, learning_rate, batch_size, seed)
  return dict(steps=float(steps), transitions=float(len(actions)),
              first_loss=first, last_loss=last)


def diagnose_task(workdir: str, preset: str,
                  demos: Sequence[dataset.Demonstration],
                  config: config_lib.MetaMimicConfig,
                  networks_kind: str = 'target', stride: int = 5,
                  handover_steps: int = 100, seed: int = 0,
                  fit_steps: int = 0,
                  fit_config: Optional[config_lib.MetaMimicConfig] = None,
                  fit_episodes_per_demo: int = 2,
                  fit_learning_rate: float = 1e-3,
                  validation_demos: Sequence[dataset.Demonstration] = ()
                  ) -> Dict[str, Any]:
  """Both probes on a run's restored imitation policy and task networks.

  Args:
    workdir: a run_local workdir with both learners' checkpoints. `config`
      must carry the run's network fields (`evaluation.network_overrides`).
    preset: the preset the networks and environment are built with.
    demos: demos whose rollouts are probed (training demos: where the
      imitation policy earns the most task reward).
    config: gives eq. 2 and the task learner's discount.
    networks_kind: see `evaluation.CHECKPOINT_NETWORKS`.
    stride: `value_probe` probes every stride-th state.
    handover_steps: the task policy's actions per handover.
    seed: seeds the environment, the noise and the fit.
    fit_steps: if > 0, also fit fresh task networks built with `fit_config`
      (default `config`) to the imitation policy's actions on
      `fit_episodes_per_demo` noisy rollouts of each of `demos`
      (`fit_task_policy_to_imitation`, Adam at `fit_learning_rate`) and
      evaluate that task policy from the starts of `demos` and of
      `validation_demos` ('fitted_task_policy').
    fit_config: the fitted networks' config (their encoding).
    fit_episodes_per_demo: see `fit_steps`.
    fit_learning_rate: see `fit_steps`.
    validation_demos: held-out demos the fitted task policy starts from.

  Returns:
    {'settings', 'source', 'imitation', 'value', 'handover', 'seconds'},
    and 'fitted_task_policy' with `fit_steps`.
  """
  start = time.time()
  seconds = {}
  environment = presets.make_environment(preset, seed=seed)
  environment_spec = specs.make_environment_spec(environment)
  imitation_networks, task_networks = evaluation.build_networks(
      preset, config, environment_spec)
  steps = {}
  for label, networks in ((evaluation.IMITATION_LEARNER, imitation_networks),
                          (evaluation.TASK_LEARNER, task_networks)):
    steps[label] = evaluation.restore_policy_networks(
        networks, workdir, label, networks_kind=networks_kind)
  diagnostics.restore_critic_network(task_networks, workdir,
                                     evaluation.TASK_LEARNER, networks_kind)
  imitation_policy = evaluation.make_greedy_policy(
      imitation_networks,
      imitation.imitation_environment_spec(environment_spec))
  task_policy = evaluation.make_greedy_policy(task_networks, environment_spec)
  critic, _ = diagnostics.make_network_critic(task_networks)
  builder = builder_lib.MetaMimicBuilder(config)
  follow = builder.make_imitation_environment(
      environment, demos, seed=seed, curriculum=False,
      early_termination='none')
  paths = diagnostics.timed(seconds, 'imitation_rollouts', lambda: [
      follow_with_states(follow, imitation_policy, demo) for demo in demos])
  value = diagnostics.timed(seconds, 'value', value_probe, paths, critic,
                            task_policy, config.discount, stride)
  handover = diagnostics.timed(seconds, 'handover', handover_probe,
                               environment, paths, task_policy,
                               handover_steps)
  fitted = {}
  if fit_steps:
    fit_config = fit_config or config
    _, fresh = evaluation.build_networks(preset, fit_config, environment_spec)
    data = diagnostics.timed(
        seconds, 'collect_imitation_actions', collect_imitation_actions,
        follow, demos, imitation_policy,
        np.asarray(config.exploration_sigma()), fit_episodes_per_demo,
        np.random.default_rng(seed + 3))
    fitted['fit'] = diagnostics.timed(
        seconds, 'fit_task_policy', fit_task_policy_to_imitation, fresh,
        *data, fit_steps, fit_learning_rate, 64, seed)
    fitted_policy = evaluation.make_greedy_policy(fresh, environment_spec)
    for split, split_demos in (('train', demos),
                               ('validation', validation_demos)):
      if split_demos:
        metrics, _ = diagnostics.timed(
            seconds, f'evaluate_fitted_{split}', evaluation.evaluate_task,
            environment, fitted_policy, split_demos)
        fitted[split] = {key: float(value) for key, value in metrics.items()
                         if np.isscalar(value)}
    fitted['network_config'] = {
        name: getattr(fit_config, name) for name in config_lib.NETWORK_FIELDS}
  seconds['total'] = round(time.time() - start, 2)
  stacked = [bool(p.task_rewards.max() >= jaco_stack.REWARD_STACK)
             for p in paths]
  return dict(
      settings=dict(preset=preset, networks=networks_kind, stride=stride,
                    handover_steps=handover_steps, seed=seed,
                    discount=config.discount,
                    demos=[int(d.episode_id) for d in demos]),
      source=dict(kind='checkpoint', workdir=workdir,
                  learner_steps={k: int(v) for k, v in steps.items()},
                  networks=networks_kind),
      imitation=dict(
          num_rollouts=float(len(paths)),
          task_return=float(np.mean([p.task_rewards.sum() for p in paths])),
          stacked=float(np.mean(stacked))),
      value=value, handover=handover, seconds=seconds,
      **(dict(fitted_task_policy=fitted) if fitted else {}))
