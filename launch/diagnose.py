"""Probes a run's imitation critic and policy against the joint tracker.

    python launch/diagnose.py --workdir=workdir/metamimic \
        --validation_demos=data/demos_validation_features \
        --output=workdir/metamimic/diagnostics.json

Restores the imitation learner's networks from <workdir>/checkpoints (the
target networks, as `launch/evaluate.py` does; `--networks=online` reads
the online ones), or without --workdir builds untrained ones, and runs
`diagnostics.diagnose`: at states along the held-out demos, how the critic
ranks candidate actions against the true eq. 2 reward, how its action
gradient points against the reward's, which of the policy's and the
tracker's actions it prefers, how much the policy's action follows the goal;
and how long training-style episodes on --demos (the preset's early
termination, the curriculum unless --nodemo_curriculum, the exploration
noise) last for the policy and for the tracker. acme_metamimic/diagnostics.py
says why each. Prints a short table and writes every number as JSON to
--output (by default <workdir>/diagnostics.json; without a workdir, only
with --output). The defaults take under a minute on 2 CPU cores for the
features preset.

To rank a network encoding before any training run, probe fresh networks
fitted to the one-step reward alone (`--fit_critic_steps`, about a minute
more): e.g. `--fit_critic_steps=3000 --config=goal_delta_scale=10.
--config=goal_delta_skip=True` against the same without the overrides.
`--config` (repeatable, as run_local's) also sets the exploration noise of
the episode-length probe (`--config=sigma_per_dimension=(...)`).

`--learner=task` probes the task learner instead (`task_diagnostics`;
needs --workdir): along the imitation policy's greedy rollouts of the first
--num_demos demos of --demos, whether the task critic's Q follows the true
task return-to-go and prefers the imitation policy's action to the task
policy's, and what the task policy does when handed the rollout's first
reached and lifted states. With `--fit_task_policy_steps=N` it also fits
fresh task networks (`--fit_task_config=field=value` sets their encoding,
e.g. observation_normalization=True) to the imitation policy's actions on
its noisy rollouts and evaluates that task policy from the training and
held-out starts: what a task policy of that encoding could take from the
imitation experience by regression alone. Writes
<workdir>/task_diagnostics.json by default.
"""

import json
import os

from absl import app
from absl import flags
from absl import logging

from acme_metamimic import config as config_lib
from acme_metamimic import diagnostics
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic import task_diagnostics

_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'run_local workdir with an imitation learner '
    'checkpoint; omit to probe untrained networks.')
_PRESET = flags.DEFINE_string('preset', 'features',
                              f'One of {sorted(presets.PRESETS)}.')
_VALIDATION_DEMOS = flags.DEFINE_string(
    'validation_demos', 'data/demos_validation_features',
    'Held-out demo set: the probed states are its frames.')
_DEMOS = flags.DEFINE_string(
    'demos', 'data/demos_train_features',
    'Training demo set: the exploration episodes follow it.')
_NUM_DEMOS = flags.DEFINE_integer(
    'num_demos', None, 'Use the first N demos of each set (default: all).')
_NUM_STATES = flags.DEFINE_integer('num_states', 20, 'States probed.')
_NUM_CANDIDATES = flags.DEFINE_integer(
    'num_candidates', 16, 'Random candidate actions per state (besides the '
    "policy's and the tracker's).")
_HORIZON = flags.DEFINE_integer(
    'horizon', 10, 'Policy steps after a candidate for its short-horizon '
    'return.')
_EXPLORATION_EPISODES = flags.DEFINE_integer(
    'exploration_episodes', 20, 'Noisy training-style episodes per policy.')
_DEMO_CURRICULUM = flags.DEFINE_bool(
    'demo_curriculum', True, 'Exploration episodes start at curriculum '
    "frames, as in the main job (launch/main.sh); run.json does not record "
    "run_local's --demo_curriculum.")
_NETWORKS = flags.DEFINE_enum(
    'networks', 'target', list(evaluation.CHECKPOINT_NETWORKS),
    "Which of the checkpoint's networks to probe.")
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of initialisation and probes.')
_FIT_CRITIC_STEPS = flags.DEFINE_integer(
    'fit_critic_steps', 0, 'Before probing, fit the critic to the one-step '
    'reward for this many SGD steps (diagnostics.fit_critic_to_one_step_'
    'reward); 0: probe the networks as they are.')
_FIT_TRANSITIONS = flags.DEFINE_integer(
    'fit_transitions', 4000, 'Transitions around the training demos that '
    'the critic or the policy is fitted to.')
_FIT_INVERSE_DYNAMICS_STEPS = flags.DEFINE_integer(
    'fit_inverse_dynamics_steps', 0, 'Before probing, fit the policy by '
    'hindsight inverse dynamics on --fit_transitions steps of its own noisy '
    'training episodes for this many SGD steps, and evaluate it on the '
    'held-out demos (diagnostics.fit_policy_by_inverse_dynamics); 0: no fit.')
_CONFIG = flags.DEFINE_multi_string(
    'config', [], 'field=value: overrides a MetaMimicConfig field of the '
    'preset after the run\'s network fields (repeatable).')
_LEARNER = flags.DEFINE_enum(
    'learner', 'imitation', ['imitation', 'task'],
    'Which learner to probe (task: task_diagnostics, needs --workdir).')
_HANDOVER_STEPS = flags.DEFINE_integer(
    'handover_steps', 100, '--learner=task: the task policy\'s actions '
    'after each handover.')
_FIT_TASK_POLICY_STEPS = flags.DEFINE_integer(
    'fit_task_policy_steps', 0, '--learner=task: also fit fresh task '
    'networks to the imitation policy\'s actions for this many SGD steps and '
    'evaluate them (task_diagnostics.fit_task_policy_to_imitation).')
_FIT_TASK_CONFIG = flags.DEFINE_multi_string(
    'fit_task_config', [], '--learner=task: field=value overrides of the '
    'fitted task networks\' config only (repeatable).')
_OUTPUT = flags.DEFINE_string(
    'output', None, 'JSON file (default: <workdir>/diagnostics.json, with '
    '--learner=task <workdir>/task_diagnostics.json).')


def table(result) -> str:
  """The headline numbers, policy beside tracker where both have one."""
  ranking = result['critic_ranking']
  versus = result['policy_vs_tracker']
  sensitivity = result['goal_sensitivity']
  exploration = result['exploration']
  horizon = result['settings']['horizon']
  rows = [
      ('critic rank corr., Q vs one-step eq. 2', ranking['q_vs_reward'], None),
      (f'critic rank corr., Q vs {horizon}-step return',
       ranking['q_vs_return'], None),
      ('cosine(dQ/da, d eq. 2/da) at pi(o)',
       result['gradient_cosine']['cosine'], None),
      (f'cosine(dQ/da, d {horizon}-step return/da) at pi(o)',
       result['gradient_cosine']['return_cosine'], None),
      # Truth against truth: how far a critic of the return can agree with
      # the one-step yardsticks above at all.
      ('truth: rank corr., eq. 2 vs return',
       ranking['reward_vs_return'], None),
      ('truth: cosine(d eq. 2/da, d return/da)',
       result['gradient_cosine']['reward_vs_return_cosine'], None),
      ('one-step eq. 2 of the action', versus['policy_reward'],
       versus['tracker_reward']),
      ('Q of the action', versus['policy_q'], versus['tracker_q']),
      ('Q(pi(o)) as a fraction of [Vmin, Vmax]',
       result['critic_support']['policy_q_fraction'], None),
      ('Q prefers the policy\'s action (fraction)',
       versus['q_prefers_policy'], None),
      ('eq. 2 prefers the policy\'s action (fraction)',
       versus['reward_prefers_policy'], None),
  ]
  for part in ('arm', 'fingers'):
    key = f'{part}_own_joint'
    rows.append((f'|d action / d goal|, {part}, own joint',
                 sensitivity['policy'][key], sensitivity['tracker'][key]))
  for key, what in (('mean_length', 'mean'), ('median_length', 'median')):
    rows.append((f'noisy episode length, {what}', exploration['policy'][key],
                 exploration['tracker'][key]))
  lines = [f'| {"probe":46s} | {"learned":>9s} | {"tracker":>9s} |',
           f'|{"-" * 48}|{"-" * 11}|{"-" * 11}|']
  for name, mine, tracker in rows:
    cell = f'{tracker:9.3g}' if tracker is not None else ' ' * 9
    lines.append(f'| {name:46s} | {mine:9.3g} | {cell} |')
  return '\n'.join(lines)


def task_table(result) -> str:
  """The task probes' headline numbers."""
  value, handover = result['value'], result['handover']
  lines = [
      f'imitation rollouts: {result["imitation"]["num_rollouts"]:.0f}, task '
      f'return {result["imitation"]["task_return"]:.1f}, stacked '
      f'{result["imitation"]["stacked"]:.0%}',
      f'task critic: rank corr. of Q with the return-to-go '
      f'{value["q_vs_return"]:.3f}; Q {value["q_imitation_action"]:.1f} '
      f'(imitation action) / {value["q_task_action"]:.1f} (task action) '
      f'against a true return-to-go of {value["return_to_go"]:.1f}',
      f'at rewarding states: Q prefers the imitation action at '
      f'{value["q_prefers_imitation_action"]:.0%}; the actions are '
      f'{value["action_distance"]:.2f} apart',
  ]
  for stage in task_diagnostics.STAGES:
    part = handover[stage]
    lines.append(
        f'handed the first {stage} state ({part["handovers"]:.0f} '
        f'rollouts), the task policy holds it {part["holds"]:.0%}, lifts '
        f'{part["lifts"]:.0%}, stacks {part["stacks"]:.0%}; task return '
        f'{part["task_return"]:.1f} against the imitation policy\'s '
        f'{part["imitation_task_return"]:.1f} over {handover["steps"]:.0f} '
        'steps')
  fitted = result.get('fitted_task_policy')
  for split in ('train', 'validation'):
    if fitted and split in fitted:
      metrics = fitted[split]
      lines.append(
          f'task policy fitted to the imitation actions, {split} starts: '
          f'reach {metrics["reach_rate"]:.0%}, lift {metrics["lift_rate"]:.0%}'
          f', stack {metrics["success_rate"]:.0%}, '
          f'{metrics["task_return_pct_of_demo"]:.1f} % of the demos\' task '
          'reward')
  return '\n'.join(lines)


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.random.set_seed(_SEED.value)
  preset = _PRESET.value
  workdir = os.path.abspath(_WORKDIR.value) if _WORKDIR.value else None
  # As in evaluate.py: the run's network-shaping overrides only, so that
  # eq. 2, the noise and the termination are the preset's.
  overrides = evaluation.network_overrides(workdir) if workdir else {}
  try:
    overrides.update(config_lib.parse_overrides(
        _CONFIG.value, ('seed', 'demo_curriculum')))
    config = presets.make_config(preset, seed=_SEED.value,
                                 demo_curriculum=_DEMO_CURRICULUM.value,
                                 **overrides)
  except ValueError as e:
    raise app.UsageError(f'--config: {e}') from e
  demos, train_demos = (
      presets.load_demonstrations(preset, path, max_episodes=_NUM_DEMOS.value)
      for path in (_VALIDATION_DEMOS.value, _DEMOS.value))
  if _LEARNER.value == 'task':
    if not workdir:
      raise app.UsageError('--learner=task needs --workdir.')
    try:
      fit_overrides = dict(overrides, **config_lib.parse_overrides(
          _FIT_TASK_CONFIG.value, ('seed',)))
      fit_config = presets.make_config(preset, seed=_SEED.value,
                                       **fit_overrides)
    except ValueError as e:
      raise app.UsageError(f'--fit_task_config: {e}') from e
    try:
      result = task_diagnostics.diagnose_task(
          workdir, preset, train_demos, config, networks_kind=_NETWORKS.value,
          handover_steps=_HANDOVER_STEPS.value, seed=_SEED.value,
          fit_steps=_FIT_TASK_POLICY_STEPS.value, fit_config=fit_config,
          validation_demos=demos)
    except FileNotFoundError as e:
      raise app.UsageError(f'No learners to probe: {e}') from e
    result['network_overrides'] = overrides
    print(task_table(result), flush=True)
    _write(result, _OUTPUT.value or os.path.join(workdir,
                                                 'task_diagnostics.json'))
    return
  try:
    result = diagnostics.diagnose(
        workdir, preset, demos, config, num_states=_NUM_STATES.value,
        num_candidates=_NUM_CANDIDATES.value, horizon=_HORIZON.value,
        seed=_SEED.value, train_demos=train_demos,
        exploration_episodes=_EXPLORATION_EPISODES.value,
        networks_kind=_NETWORKS.value,
        fit_critic_steps=_FIT_CRITIC_STEPS.value,
        fit_transitions=_FIT_TRANSITIONS.value,
        fit_inverse_dynamics_steps=_FIT_INVERSE_DYNAMICS_STEPS.value)
  except FileNotFoundError as e:
    raise app.UsageError(f'No imitation learner to probe: {e}') from e
  result['network_overrides'] = overrides
  result['demos'] = dict(validation=os.path.abspath(_VALIDATION_DEMOS.value),
                         train=os.path.abspath(_DEMOS.value))
  print(f'[diagnose] networks: {result["source"]}', flush=True)
  print(table(result), flush=True)
  if 'inverse_dynamics_imitation' in result:
    metrics = result['inverse_dynamics_imitation']
    print('[diagnose] after the inverse-dynamics fit, held-out imitation: '
          f'{metrics["imitation_reward_per_step"]:.2f} eq. 2 per step, '
          f'{metrics["task_return_pct_of_demo"]:.1f} % of the demos\' task '
          'reward', flush=True)
  print(f'[diagnose] {result["seconds"]["total"]:.0f}s', flush=True)
  output = _OUTPUT.value or (
      os.path.join(workdir, 'diagnostics.json') if workdir else None)
  if output:
    _write(result, output)


def _write(result, output: str):
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w') as f:
    json.dump(result, f, indent=2, sort_keys=True, default=float)
  print(f'[diagnose] wrote {output}', flush=True)


if __name__ == '__main__':
  app.run(main)
