"""What the tracker-fed imitation actors put in the task table, by stage.

Not project code: a probe kept beside the results it writes. The
tracker-fed bound's task policy lifts but has never stacked from a held-out
start (docs/fidelity.md, sessions 25-32); handed a lifted state, the task
policies probed so far stack from 0-11 %. A task learner can only clone or
value what its replay holds, so this probe counts what the feeder writes,
in minutes and without training: it plays the imitation actors' episodes
(`MetaMimicBuilder.make_imitation_environment` with the run's early
termination and demo curriculum, the joint tracker plus the actors'
clipped Gaussian noise, `config.exploration_sigma()`), on the training
demos, for each `--curriculum_max_step`, and counts the steps at each task
reward stage (none / reached / lifted / stacked), the stacking events (a
step whose reward is the stack's after one of the same episode that was
not: the transitions that show how to stack; an episode that starts past
its demo's stack is stacked from its first step and shows none), and how
episodes end.

    MUJOCO_GL=egl python docs/results/task_feeder/feeder_probe.py \\
        --demos=/tmp/demos/demos_train_features_200 --num_demos=200 \\
        --curriculum_max_step=100,300 --episodes=200 \\
        '--config=sigma_per_dimension=(0.2,0.2,0.2,0.2,0.2,0.2,0.02,0.02,0.02)' \\
        --output=docs/results/task_feeder/tracker_curriculum.json

Each arm replays the same demo and start sequence for its range (seeded by
`--seed`) and the same noise generator seed, so arms differ in the range
only. `--before_stack=N` (repeatable as a list) adds arms whose episodes
start among the N frames before their demo's first stacked frame (the
config's `curriculum_peak_window`, with `curriculum_peak_fraction` 1):
where the stacking transitions come from. Session 33's
tracker_before_stack.json predates those fields (its arms drew their own
starts, a demo that never stacks among its first frames); from session 34
the arms are the config's, and `--config=curriculum_peak_fraction=F` mixes
them into every curriculum arm.
"""
import dataclasses
import json
import os
import time

from absl import app
from absl import flags
import numpy as np

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import diagnostics
from acme_metamimic import presets
from acme_metamimic.environments import jaco_stack

_DEMOS = flags.DEFINE_string('demos', None, 'Training demo set.')
_NUM_DEMOS = flags.DEFINE_integer('num_demos', None, 'First N demos only.')
_CURRICULUM_MAX_STEP = flags.DEFINE_list(
    'curriculum_max_step', ['100', '300'],
    'One arm per value: episodes start among the first N demo frames.')
_BEFORE_STACK = flags.DEFINE_list(
    'before_stack', [],
    'One more arm per value N: episodes start among the N frames before '
    "their demo's first stacked frame (curriculum_peak_fraction=1 with "
    'curriculum_peak_window=N; --config may set a fraction for every arm).')
_EPISODES = flags.DEFINE_integer('episodes', 200, 'Episodes per arm.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds starts, demos and noise.')
_CONFIG = flags.DEFINE_multi_string(
    'config', [], 'field=value overrides of the features preset (as '
    "run_local's --config).")
_OUTPUT = flags.DEFINE_string('output', None, 'JSON file.')

_STAGES = (('none', 0.), ('reached', jaco_stack.REWARD_REACH),
           ('lifted', jaco_stack.REWARD_LIFT),
           ('stacked', jaco_stack.REWARD_STACK))


def play(config, demos, episodes: int, seed: int):
  """Stage counts of `episodes` tracker-fed imitation episodes.

  Starts follow the config's curriculum (`curriculum_max_step`,
  `curriculum_peak_fraction`, `curriculum_peak_window`).
  """
  environment = presets.make_environment('features', seed=seed)
  builder = builder_lib.MetaMimicBuilder(config)
  imitation_environment = builder.make_imitation_environment(
      environment, demos, seed=seed, curriculum=True)
  tracker = diagnostics.joint_tracker_policy(imitation_environment)
  sigma = np.asarray(config.exploration_sigma(), np.float32)
  rng = np.random.default_rng(seed)
  steps = {name: 0 for name, _ in _STAGES}
  stack_events, episodes_stacked, lengths, ended_early = 0, 0, [], []
  task_returns = []
  for _ in range(episodes):
    timestep = imitation_environment.reset()
    # A start past the demo's stack is stacked already: the first step's
    # reward is the baseline an event is counted against, not an event.
    previous, stacked = None, False
    while not timestep.last():
      action = tracker(timestep.observation)
      noisy = np.clip(action + rng.normal(0., 1., action.shape) * sigma,
                      -1., 1.).astype(np.float32)
      timestep = imitation_environment.step(noisy)
      reward = float(timestep.reward)
      name = min(_STAGES, key=lambda stage: abs(stage[1] - reward))[0]
      steps[name] += 1
      if (reward >= jaco_stack.REWARD_STACK and previous is not None and
          previous < reward):
        stack_events += 1
      stacked |= reward >= jaco_stack.REWARD_STACK
      previous = reward
    metrics = imitation_environment.episode_metrics
    lengths.append(metrics['steps'])
    ended_early.append(metrics['early_terminated'])
    task_returns.append(metrics['task_return'])
    episodes_stacked += stacked
  total = sum(steps.values())
  return dict(
      episodes=episodes, steps=total,
      steps_by_stage=steps,
      fraction_by_stage={k: v / max(total, 1) for k, v in steps.items()},
      stack_events=stack_events,
      episodes_with_a_stack=episodes_stacked / episodes,
      mean_length=float(np.mean(lengths)),
      early_termination_rate=float(np.mean(ended_early)),
      mean_task_return=float(np.mean(task_returns)))


def main(_):
  overrides = config_lib.parse_overrides(
      _CONFIG.value, ('curriculum_max_step', 'demo_curriculum'))
  demos = presets.load_demonstrations('features', os.path.abspath(
      _DEMOS.value), max_episodes=_NUM_DEMOS.value)
  arms = []
  for value in _CURRICULUM_MAX_STEP.value:
    start = time.time()
    config = presets.make_config('features', demo_curriculum=True,
                                 curriculum_max_step=int(value), **overrides)
    result = play(config, demos, _EPISODES.value, _SEED.value)
    label = int(value)
    if config.curriculum_peak_fraction:
      label = (f'{value}, {config.curriculum_peak_fraction:.0%} among '
               f'{config.curriculum_peak_window} before the stack')
    result.update(curriculum_max_step=label,
                  seconds=round(time.time() - start, 1))
    arms.append(result)
    print(json.dumps(result), flush=True)
  for value in _BEFORE_STACK.value:
    start = time.time()
    config = presets.make_config(
        'features', demo_curriculum=True,
        curriculum_max_step=int(_CURRICULUM_MAX_STEP.value[0]), **overrides)
    config = dataclasses.replace(config, curriculum_peak_fraction=1.,
                                 curriculum_peak_window=int(value))
    result = play(config, demos, _EPISODES.value, _SEED.value)
    result.update(curriculum_max_step=f'{value} before the stack',
                  seconds=round(time.time() - start, 1))
    arms.append(result)
    print(json.dumps(result), flush=True)
  output = dict(demos=_DEMOS.value, num_demos=len(demos),
                config=_CONFIG.value, seed=_SEED.value, arms=arms)
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w') as f:
      json.dump(output, f, indent=1)


if __name__ == '__main__':
  flags.mark_flag_as_required('demos')
  app.run(main)
