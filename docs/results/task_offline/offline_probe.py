"""A fresh task learner trained on a finished run's replay, without actors.

Not project code: a probe kept beside the results it writes. Three runs of
one 60-minute arm (D200B10, seed 0) gave the task policy held-out returns
of 14-29 and lifts from 0-3 of 10 starts (docs/fidelity.md, session 28):
a one-seed lever cannot be ranked against that spread, and the spread mixes
two things, the experience the actors happened to collect and what the
learner made of it. This probe holds the first fixed: it restores a run's
replay checkpoint (<workdir>/replay, both tables as the run left them; the
copy it serves is a temporary one) into an in-process Reverb server, trains
a new task learner on the task table alone (nothing is inserted), built by
`MetaMimicBuilder.make_learner` as the program builds it, and every
`--eval_every` SGD steps runs its greedy target policy (what the evaluator
runs) from the same `--episodes` fresh starts (the held-out kind: the
environment's own resets, seeded by `--starts_seed`), counting reach, lift
and stack. Learner-side levers are `--config` overrides (the config's
fields, as run_local takes them); each arm sees the same replay, the same
starts and the same network seed (`--seed`), so arms are paired.

    MUJOCO_GL=egl python docs/results/task_offline/offline_probe.py \\
        --workdir=/tmp/screens/task_levers_60min_s28/armD200B10_seed0 \\
        --steps=20000 --eval_every=5000 \\
        --output=docs/results/task_offline/s28_D200B10_seed0_default.json

The JSON is rewritten after every evaluation, so a killed probe keeps what
it measured.
"""
import dataclasses
import json
import os
import pickle
import shutil
import tempfile
import time

from absl import app
from absl import flags
from acme import specs
from acme.tf import utils as tf2_utils
from acme.utils import loggers
import numpy as np
import reverb
import tensorflow as tf

from acme_metamimic import baselines
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import evaluation
from acme_metamimic import networks as networks_lib
from acme_metamimic import presets
from acme_metamimic import seeding
from acme_metamimic.environments import jaco_stack

_WORKDIR = flags.DEFINE_string('workdir', None, 'A finished run_local workdir.')
_STEPS = flags.DEFINE_integer('steps', 20_000, 'SGD steps of the new learner.')
_EVAL_EVERY = flags.DEFINE_integer('eval_every', 5_000,
                                   'SGD steps between evaluations.')
_EVAL_FROM = flags.DEFINE_integer(
    'eval_from', 0, 'No evaluation before this many SGD steps (a late window '
    'of several evaluations averages out how much one checkpoint varies).')
_EPISODES = flags.DEFINE_integer('episodes', 30, 'Fresh starts per evaluation.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the networks and sampling.')
_STARTS_SEED = flags.DEFINE_integer('starts_seed', 0,
                                    'Seeds the fresh starts of evaluation.')
_CONFIG = flags.DEFINE_multi_string(
    'config', [], "Learner overrides as 'field=value' (run_local's --config).")
_DEMO_ACTIONS = flags.DEFINE_string(
    'demo_actions', None,
    'A demo set (make_demos.py output): train on its demonstrator '
    'transitions instead of the replay, a diagnostic of what cloning clean '
    'actions gives (demo actions never reach a MetaMimic policy).')
_DEMO_ACTION_NOISE = flags.DEFINE_float(
    'demo_action_noise', 0.,
    'With --demo_actions: Gaussian noise of this standard deviation added to '
    'each stored demo action (clipped to the action spec), the states '
    'unchanged: the imitation replay\'s label noise (its actions carry '
    'fresh exploration noise at every step) without its states.')
_ROLLOUTS = flags.DEFINE_string(
    'rollouts', None,
    'A collect_rollouts.py pickle: train on those imitation rollouts, '
    'written through the imitation actors\' adder (both tables, as in a '
    'run), instead of the replay.')
_ROLLOUT_LABELS = flags.DEFINE_enum(
    'rollout_labels', 'executed', ['executed', 'greedy'],
    'With --rollouts, the action stored with each step: the one executed '
    '(greedy plus exploration noise, what an actor stores) or the imitation '
    'policy\'s greedy one.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON written here.')


def insert_rollouts(path: str, labels: str, adder) -> int:
  """Writes collect_rollouts.py's episodes through `adder`; steps written."""
  with open(path, 'rb') as f:
    episodes = pickle.load(f)['episodes']
  steps = 0
  for episode in episodes:
    adder.add_first(episode['timesteps'][0])
    for action, timestep in zip(episode[labels], episode['timesteps'][1:]):
      adder.add(action, timestep)
      steps += 1
    adder.reset()
  return steps


def add_label_noise(demos, spec, stddev: float, seed: int):
  """Demos whose actions carry clipped Gaussian noise (states unchanged)."""
  rng = np.random.default_rng(seed)
  noisy = []
  for demo in demos:
    actions = demo.actions + rng.normal(0., stddev, demo.actions.shape)
    noisy.append(dataclasses.replace(demo, actions=np.clip(
        actions, spec.actions.minimum, spec.actions.maximum).astype(
            demo.actions.dtype)))
  return noisy


def run_config(workdir: str, extra) -> config_lib.MetaMimicConfig:
  """features_config() with the run's recorded overrides, then `extra`."""
  with open(os.path.join(workdir, 'run.json')) as f:
    recorded = json.load(f)
  overrides = dict(recorded.get('config_overrides') or {})
  overrides.update(evaluation.network_overrides(workdir))
  overrides.update(extra)
  return config_lib.features_config(**overrides)


def evaluate(policy, environment, episodes: int):
  """Greedy rollouts from `episodes` resets of a freshly seeded environment."""
  rows = []
  for _ in range(episodes):
    timestep, rewards = environment.reset(), []
    while not timestep.last():
      action = policy(tf2_utils.add_batch_dim(timestep.observation))
      timestep = environment.step(tf2_utils.to_numpy_squeeze(action))
      rewards.append(float(timestep.reward))
    rewards = np.asarray(rewards)
    rows.append((rewards.sum(), rewards.max() >= jaco_stack.REWARD_REACH,
                 rewards.max() >= jaco_stack.REWARD_LIFT,
                 rewards.max() >= jaco_stack.REWARD_STACK))
  returns, reached, lifted, stacked = map(np.asarray, zip(*rows))
  return dict(episodes=episodes, mean_return=float(returns.mean()),
              reach=float(reached.mean()), lift=float(lifted.mean()),
              stack=float(stacked.mean()))


def main(_):
  workdir = os.path.abspath(_WORKDIR.value)
  extra = config_lib.parse_overrides(_CONFIG.value)
  config = run_config(workdir, extra)
  environment = presets.make_environment('features', seed=_SEED.value)
  spec = specs.make_environment_spec(environment)
  builder = builder_lib.MetaMimicBuilder(config)

  copy = None
  if _DEMO_ACTIONS.value:
    server = reverb.Server(builder.make_replay_tables(spec))
    client = reverb.Client(f'localhost:{server.port}')
    demos = baselines.load_demonstrations_with_actions(
        'features', os.path.abspath(_DEMO_ACTIONS.value))
    if _DEMO_ACTION_NOISE.value:
      demos = add_label_noise(demos, spec, _DEMO_ACTION_NOISE.value,
                              _SEED.value)
    written = baselines.insert_demonstrations(demos,
                                              builder.make_adder(client))
    print(f'{written} demo steps of {len(demos)} demos in the task table',
          flush=True)
  elif _ROLLOUTS.value:
    server = reverb.Server(builder.make_replay_tables(spec))
    client = reverb.Client(f'localhost:{server.port}')
    written = insert_rollouts(_ROLLOUTS.value, _ROLLOUT_LABELS.value,
                              builder.make_imitation_adder(client))
    print(f'{written} imitation steps ({_ROLLOUT_LABELS.value} actions) in '
          'both tables', flush=True)
  else:
    copy = tempfile.mkdtemp(prefix='offline_probe_')
    shutil.copytree(os.path.join(workdir, 'replay'), copy, dirs_exist_ok=True)
    # The tables as the run made them (their signatures: a run with greedy
    # labels stored them as extras), whatever the learner's overrides.
    run_builder = builder_lib.MetaMimicBuilder(run_config(workdir, {}))
    server = reverb.Server(
        run_builder.make_replay_tables(spec),
        checkpointer=reverb.checkpointers.DefaultCheckpointer(copy))
    client = reverb.Client(f'localhost:{server.port}')
  table_sizes = {name: int(info.current_size)
                 for name, info in client.server_info().items()}
  print('tables', table_sizes, flush=True)
  if not table_sizes.get(config_lib.TASK_TABLE):
    source = (_DEMO_ACTIONS.value or _ROLLOUTS.value or
              os.path.join(workdir, 'replay'))
    raise ValueError(f'{source}: the task table is empty.')

  seeding.seed_process(_SEED.value, 'offline_task_learner')
  online = presets.make_networks('features', config, spec,
                                 goal_conditioned=False)
  target = presets.make_networks('features', config, spec,
                                 goal_conditioned=False)
  online.init(spec)
  target.init(spec)
  learner = builder.make_learner(
      (online, target), builder.make_task_dataset_iterator(client),
      logger=loggers.TerminalLogger('offline_task_learner', time_delta=60.),
      discount=config.discount,
      behaviour_cloning_weight=config.task_behaviour_cloning_weight)
  policy = tf.function(networks_lib.make_behavior_policy(target, spec, 0.))

  output = dict(workdir=workdir, demo_actions=_DEMO_ACTIONS.value,
                demo_action_noise=_DEMO_ACTION_NOISE.value,
                rollouts=_ROLLOUTS.value,
                rollout_labels=_ROLLOUT_LABELS.value if _ROLLOUTS.value
                else None,
                config=_CONFIG.value, seed=_SEED.value,
                starts_seed=_STARTS_SEED.value,
                table_sizes=table_sizes, evaluations=[])
  steps, learning_seconds = 0, 0.
  while steps < _STEPS.value:
    start = time.time()
    learner.step()
    learning_seconds += time.time() - start
    steps += config.learner_steps_per_call
    if steps >= _EVAL_FROM.value and (steps % _EVAL_EVERY.value == 0 or
                                      steps >= _STEPS.value):
      environment = presets.make_environment('features',
                                             seed=_STARTS_SEED.value)
      row = dict(sgd_steps=steps, learning_seconds=round(learning_seconds),
                 **evaluate(policy, environment, _EPISODES.value))
      output['evaluations'].append(row)
      print(row, flush=True)
      if _OUTPUT.value:
        with open(_OUTPUT.value, 'w') as f:
          json.dump(output, f, indent=1)
  server.stop()
  if copy:
    shutil.rmtree(copy, ignore_errors=True)


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
