"""SGD steps/s of MetaMimic's learners vs Acme's stock D4PGLearner; one JSON.

Four learners on the same network architecture, batch 64, each fed by its own
Reverb dataset from one in-process server whose `imitation` and `task` tables
(`MetaMimicBuilder.make_replay_tables`) are pre-filled with transitions of the
real item shapes (written by `ImitationRewardAdder` from synthetic timesteps):

- stock_imitation: `acme.agents.tf.d4pg.learning.D4PGLearner`, goal-conditioned
  networks, plain iterator over the imitation table (no priority updates);
- metamimic_imitation: `MetaMimicBuilder.make_learner(priority_table=...)`,
  i.e. `learning.D4PGLearner` with the features preset's settings: the
  XLA-compiled step that also writes the batch's TD-error priorities,
  `learner_steps_per_call` (4) SGD steps per `step()` call;
- stock_task / metamimic_task: the same pair on the task table and
  unconditional networks (`make_learner` without a priority table).
- with --steps_per_call=K (K > 1): metamimic_{imitation,task}_x{K}, the same
  learners taking K SGD steps per `step()` call;
- with --no_xla: metamimic_imitation_no_xla, the fused learner without XLA,
  to separate what XLA gives from what fusing the priority pass gives.

Every rate is SGD steps/s: a learner's SGD steps per `step()` call (1 for
Acme's) times its calls, over the time of those calls. Steps are timed in
interleaved rounds (every learner runs about `--steps` SGD steps per round, in
whole calls, `--rounds` rounds) so that load from other processes on the
shared CPU hits all variants alike; the reported rate is the median over
rounds.

  .venv/bin/python bench/bench_learner.py                     # MLP, features
  .venv/bin/python bench/bench_learner.py --torso=impala --image_size=32 \
      --steps=3 --rounds=3
"""

import argparse
import copy
import dataclasses
import json
import os
import statistics
import time

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
from acme import specs
from acme.agents.tf.d4pg import agent as d4pg_agent
from acme.utils import counting
from acme.utils import loggers
import dm_env
import numpy as np
import reverb
import sonnet as snt
import tensorflow as tf

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import networks
from acme_metamimic.environments import imitation
from acme_metamimic.environments import jaco_stack
# pylint: enable=g-import-not-at-top,wrong-import-position


# Issue target: both learners at least 2x the stock learner's SGD steps/s.
TARGET_RATIO = 2.0


def _random_observation(spec, rng):
  def sample(leaf):
    if leaf.dtype == np.uint8:
      return rng.integers(0, 256, leaf.shape, dtype=np.uint8)
    return rng.normal(size=leaf.shape).astype(leaf.dtype)
  return tf.nest.map_structure(sample, spec)


def prefill(builder, env_spec, client, num_steps, episode_length, rng):
  """Writes `num_steps` synthetic imitation steps to both tables."""
  adder = builder.make_imitation_adder(client)
  imitation_obs_spec = imitation.imitation_environment_spec(
      env_spec).observations
  written = 0
  while written < num_steps:
    adder.add_first(dm_env.restart(
        _random_observation(imitation_obs_spec, rng)))
    for t in range(episode_length):
      observation = _random_observation(imitation_obs_spec, rng)
      reward = np.float32(rng.uniform())
      if t == episode_length - 1:
        timestep = dm_env.truncation(reward, observation, np.float32(1.))
      else:
        timestep = dm_env.transition(reward, observation, np.float32(1.))
      adder.add(rng.uniform(-1, 1, 9).astype(np.float32), timestep)
      written += 1
  adder.reset()


def make_learners(builder, config, env_spec, client, torso, keys,
                  include_stale, steps_per_call=1, no_xla=False):
  """The stock and MetaMimic learners, each with fresh networks."""
  imitation_spec = imitation.imitation_environment_spec(env_spec)

  def nets(goal_conditioned):
    spec = imitation_spec if goal_conditioned else env_spec
    online = networks.make_networks(
        env_spec, torso=torso, observation_keys=keys,
        goal_conditioned=goal_conditioned, vmin=config.vmin, vmax=config.vmax,
        num_atoms=config.num_atoms)
    target = copy.deepcopy(online)
    online.init(spec)
    target.init(spec)
    return online, target

  def stock(goal_conditioned, iterator):
    """Acme's own D4PGBuilder.make_learner (stock D4PGLearner)."""
    stock_config = dataclasses.replace(
        config,
        policy_optimizer=snt.optimizers.Adam(config.policy_learning_rate),
        critic_optimizer=snt.optimizers.Adam(config.critic_learning_rate))
    return d4pg_agent.D4PGBuilder(stock_config).make_learner(
        nets(goal_conditioned), iterator, counting.Counter(),
        loggers.NoOpLogger(), checkpoint=False)

  def ours(goal_conditioned, iterator, our_builder=builder, **kwargs):
    return our_builder.make_learner(
        nets(goal_conditioned), iterator, counter=counting.Counter(),
        logger=loggers.NoOpLogger(), checkpoint=False, **kwargs)

  learners = {
      'stock_imitation': stock(
          True, builder.make_imitation_dataset_iterator(client)),
      'metamimic_imitation': ours(
          True, builder.make_imitation_dataset_iterator(client),
          priority_table=config_lib.IMITATION_TABLE, replay_client=client),
      'stock_task': stock(False, builder.make_dataset_iterator(client)),
      'metamimic_task': ours(False, builder.make_dataset_iterator(client)),
  }
  variants = {}
  if steps_per_call > 1:
    variants[f'x{steps_per_call}'] = dict(learner_steps_per_call=steps_per_call)
  if no_xla:
    variants['no_xla'] = dict(learner_jit_compile=False)
  for suffix, overrides in variants.items():
    variant_builder = builder_lib.MetaMimicBuilder(
        dataclasses.replace(config, **overrides))
    learners[f'metamimic_imitation_{suffix}'] = ours(
        True, variant_builder.make_imitation_dataset_iterator(client),
        our_builder=variant_builder,
        priority_table=config_lib.IMITATION_TABLE, replay_client=client)
    learners[f'metamimic_task_{suffix}'] = ours(
        False, variant_builder.make_dataset_iterator(client),
        our_builder=variant_builder)
  if include_stale:
    for period in include_stale:
      stale_builder = builder_lib.MetaMimicBuilder(dataclasses.replace(
          config, priority_update_period=period))
      learners[f'metamimic_imitation_period_{period}'] = ours(
          True, stale_builder.make_imitation_dataset_iterator(client),
          our_builder=stale_builder,
          priority_table=config_lib.IMITATION_TABLE, replay_client=client)
  return learners


def sgd_steps_per_call(learner) -> int:
  """SGD steps one `step()` call takes: ours `steps_per_call`, Acme's 1."""
  return getattr(learner, '_steps_per_call', 1)


def check_sgd_steps(name, learner, expected):
  """Raises unless `learner` has taken `expected` SGD steps in all.

  Both learners count their SGD steps in `_num_steps` (the target-copy
  clock), so this checks the unit the rates are reported in.
  """
  taken = int(learner._num_steps.numpy())  # pylint: disable=protected-access
  if taken != expected:
    raise RuntimeError(f'{name}: {taken} SGD steps taken, {expected} counted.')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--torso', default='mlp',
                      choices=('mlp', 'impala', 'paper_resnet'))
  parser.add_argument('--image_size', type=int, default=32,
                      help='image size for image torsos')
  parser.add_argument('--batch_size', type=int, default=64)
  parser.add_argument('--steps', type=int, default=100,
                      help='timed SGD steps per learner per round (rounded '
                      'down to whole step() calls, at least one)')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument('--prefill', type=int, default=2000,
                      help='imitation steps written to both tables')
  parser.add_argument('--steps_per_call', type=int, default=1,
                      help='also time learners taking this many SGD steps '
                      'per step() call')
  parser.add_argument('--no_xla', action='store_true',
                      help='also time the fused learner without XLA')
  parser.add_argument('--priority_update_periods', default='',
                      help='comma-separated config.priority_update_period '
                      'values to time as extra imitation learners')
  args = parser.parse_args()

  tf.random.set_seed(0)
  rng = np.random.default_rng(0)
  if args.torso == 'mlp':
    env = jaco_stack.make_environment('features', seed=0)
    keys = ('features',)
  else:
    env = jaco_stack.make_environment('vision', seed=0,
                                      image_size=args.image_size)
    keys = ('image',)
  env_spec = specs.make_environment_spec(env)
  config = config_lib.features_config(
      batch_size=args.batch_size, min_replay_size=1, samples_per_insert=None,
      learner_jit_compile=True,  # As run_local configures the learners.
      max_replay_size=max(10_000, 2 * args.prefill))
  builder = builder_lib.MetaMimicBuilder(config)
  server = reverb.Server(builder.make_replay_tables(env_spec), port=None)
  client = reverb.Client(f'localhost:{server.port}')
  start = time.perf_counter()
  prefill(builder, env_spec, client, args.prefill, 50, rng)
  prefill_s = time.perf_counter() - start

  periods = [int(p) for p in args.priority_update_periods.split(',') if p]
  learners = make_learners(builder, config, env_spec, client, args.torso,
                           keys, periods, args.steps_per_call, args.no_xla)
  steps_per_call = {name: sgd_steps_per_call(learner)
                    for name, learner in learners.items()}
  calls = {name: max(1, args.steps // steps_per_call[name])
           for name in learners}
  first_step_s = {}
  for name, learner in learners.items():
    start = time.perf_counter()
    for _ in range(args.warmup):
      learner.step()
    first_step_s[name] = round(time.perf_counter() - start, 2)
    check_sgd_steps(name, learner, args.warmup * steps_per_call[name])

  rates = {name: [] for name in learners}
  for _ in range(args.rounds):
    for name, learner in learners.items():
      start = time.perf_counter()
      for _ in range(calls[name]):
        learner.step()
      rates[name].append(calls[name] * steps_per_call[name] /
                         (time.perf_counter() - start))
  for name, learner in learners.items():
    check_sgd_steps(name, learner, (args.warmup + args.rounds * calls[name]) *
                    steps_per_call[name])
  median = {name: statistics.median(r) for name, r in rates.items()}

  ratios = {
      'metamimic_imitation_vs_stock': median['metamimic_imitation'] /
                                      median['stock_imitation'],
      'metamimic_task_vs_stock': median['metamimic_task'] /
                                 median['stock_task'],
  }
  for name in median:
    if name.startswith('metamimic_') and name not in (
        'metamimic_imitation', 'metamimic_task'):
      stock = 'stock_task' if '_task' in name else 'stock_imitation'
      ratios[f'{name}_vs_stock'] = median[name] / median[stock]
  info = client.server_info()
  print(json.dumps({
      'torso': args.torso,
      'observation_keys': list(keys),
      'image_size': args.image_size if args.torso != 'mlp' else None,
      'batch_size': args.batch_size,
      'steps_per_round': args.steps,
      'sgd_steps_per_call': steps_per_call,
      'calls_per_round': calls,
      'rounds': args.rounds,
      'table_sizes': {k: v.current_size for k, v in info.items()},
      'prefill_s': round(prefill_s, 2),
      'warmup_s': first_step_s,
      'sgd_steps_per_s_median': {k: round(v, 2) for k, v in median.items()},
      'sgd_steps_per_s_rounds': {k: [round(x, 2) for x in v]
                                 for k, v in rates.items()},
      'ratios': {k: round(v, 3) for k, v in ratios.items()},
      'target_ratio': TARGET_RATIO,
      'target_met': {k: v >= TARGET_RATIO for k, v in ratios.items()},
      'cpus': len(os.sched_getaffinity(0)),
  }))
  server.stop()


if __name__ == '__main__':
  main()
