"""Per-step cost of the imitation reward and the double write; one JSON.

For each preset, timesteps are first recorded from `JacoStack` with random
actions (the env step time is measured there, in the same run). Then, in
interleaved rounds over the same recorded steps (episodes of --episode_length):

- reward: `rewards.ImitationReward` (eq. 2) on (o_{t+1}, d_{t+1});
- stock_adder: one Acme `NStepTransitionAdder` writing (o, a, r_task) to the
  task table (what a D4PG actor does);
- imitation_adder: `ImitationRewardAdder`: finiteness checks, eq. 2, one
  append per step and two items (imitation table {o, goal}, task table o);
- stock_goal_conditioned_adder: one stock `NStepTransitionAdder` writing
  ({o, goal}, a, r) to the imitation table only (a goal-conditioned D4PG actor);
  imitation_adder minus this is the cost of the second item and reward alone;
- two_stock_adders: the previous design, kept as the "before" figure: eq. 2
  and two stock `NStepTransitionAdder`s, one per table, each appending the step.

The extra MetaMimic cost per step is imitation_adder - stock_adder, reported
as a fraction of an env step (target <= 2%). Both tables are on one real
in-process Reverb server from `MetaMimicBuilder.make_replay_tables`.

  .venv/bin/python bench/bench_adder.py
"""

import argparse
import gc
import json
import os
import statistics
import time

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
from acme import specs
from acme.adders import reverb as reverb_adders
from acme.agents.tf.d4pg import agent as d4pg_agent
import dm_env
import numpy as np
import reverb

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic.environments import imitation
from acme_metamimic.environments import jaco_stack
# pylint: enable=g-import-not-at-top,wrong-import-position


def record(env, steps, rng):
  """Random-action steps; returns (timesteps, actions, seconds per step)."""
  timesteps = [env.reset()]
  actions = rng.uniform(-1., 1., (steps, 9)).astype(np.float32)
  start = time.perf_counter()
  for action in actions:
    timesteps.append(env.step(action))
  return timesteps, actions, (time.perf_counter() - start) / steps


def episodes(timesteps, goals, actions, length):
  """Splits the recording into episodes of plain and goal-conditioned steps."""
  result = []
  for begin in range(0, len(actions) - length + 1, length):
    plain, conditioned = [], []
    for i in range(begin, begin + length + 1):
      step = timesteps[i]
      if i == begin:
        step = dm_env.restart(step.observation)
      elif i == begin + length:
        step = dm_env.truncation(step.reward, step.observation, step.discount)
      plain.append(step)
      conditioned.append(step._replace(observation={
          imitation.OBSERVATION: step.observation,
          imitation.GOAL: goals[i + 1].observation}))
    result.append((plain, conditioned, actions[begin:begin + length]))
  return result


def bench_preset(preset, args, rng):
  env = jaco_stack.make_environment(preset, seed=0, episode_length=10**6,
                                    image_size=args.image_size)
  steps = args.steps if preset == 'features' else args.vision_steps
  env.step(np.zeros(9, np.float32))  # Render once outside the timing.
  timesteps, actions, env_step_s = record(env, steps, rng)
  goals, _, _ = record(env, steps + 1, rng)
  data = episodes(timesteps, goals, actions, args.episode_length)

  config = config_lib.features_config(max_replay_size=args.max_replay_size)
  builder = builder_lib.MetaMimicBuilder(config)
  env_spec = specs.make_environment_spec(env)
  server = reverb.Server(builder.make_replay_tables(env_spec), port=None)
  client = reverb.Client(f'localhost:{server.port}')
  reward = builder.make_imitation_reward()
  # Acme's own D4PG adder (ours drops its constant priority function).
  stock = d4pg_agent.D4PGBuilder.make_adder(builder, client)
  ours = builder.make_imitation_adder(client)
  two_stock = [reverb_adders.NStepTransitionAdder(
      client, config.n_step, config.discount,
      priority_fns={table: lambda unused, p=priority: p})
               for table, priority in ((config_lib.IMITATION_TABLE,
                                        config.initial_priority),
                                       (config_lib.TASK_TABLE, 1.))]

  def run_reward():
    for _, conditioned, _ in data:
      for step in conditioned[1:]:
        reward(step.observation[imitation.OBSERVATION],
               step.observation[imitation.GOAL])

  def run_adder(adder, conditioned_input):
    def run():
      for plain, conditioned, acts in data:
        seq = conditioned if conditioned_input else plain
        adder.add_first(seq[0])
        for action, step in zip(acts, seq[1:]):
          adder.add(action, step)
    return run

  def run_two_stock_adders():
    imitation_adder, task_adder = two_stock
    for plain, conditioned, acts in data:
      imitation_adder.add_first(conditioned[0])
      task_adder.add_first(plain[0])
      for action, previous, step, plain_step in zip(
          acts, conditioned, conditioned[1:], plain[1:]):
        r_imitate = reward(step.observation[imitation.OBSERVATION],
                           previous.observation[imitation.GOAL])
        imitation_adder.add(action, step._replace(reward=np.asarray(
            r_imitate, np.float32)))
        task_adder.add(action, plain_step)

  goal_conditioned = reverb_adders.NStepTransitionAdder(
      client, config.n_step, config.discount,
      priority_fns={config_lib.IMITATION_TABLE:
                    lambda unused: config.initial_priority})
  variants = {'reward': run_reward,
              'stock_adder': run_adder(stock, False),
              'stock_goal_conditioned_adder': run_adder(goal_conditioned, True),
              'imitation_adder': run_adder(ours, True),
              'two_stock_adders': run_two_stock_adders}
  num_steps = sum(len(acts) for _, _, acts in data)
  for run in variants.values():  # Warm-up.
    run()
  seconds = {name: [] for name in variants}
  for _ in range(args.rounds):
    for name, run in variants.items():
      start = time.perf_counter()
      run()
      seconds[name].append((time.perf_counter() - start) / num_steps)
  per_step = {k: statistics.median(v) for k, v in seconds.items()}
  extra = per_step['imitation_adder'] - per_step['stock_adder']
  result = {
      'env_step_ms': round(env_step_s * 1e3, 3),
      'timed_steps_per_round': num_steps,
      'rounds': args.rounds,
      'per_step_ms_median': {k: round(v * 1e3, 4) for k, v in per_step.items()},
      'fraction_of_env_step': {
          'reward': round(per_step['reward'] / env_step_s, 4),
          'stock_adder': round(per_step['stock_adder'] / env_step_s, 4),
          'imitation_adder': round(per_step['imitation_adder'] / env_step_s,
                                   4),
          'imitation_adder_minus_stock': round(extra / env_step_s, 4),
          'imitation_adder_minus_goal_conditioned': round(
              (per_step['imitation_adder'] -
               per_step['stock_goal_conditioned_adder']) / env_step_s, 4),
          'two_stock_adders_minus_stock': round(
              (per_step['two_stock_adders'] - per_step['stock_adder']) /
              env_step_s, 4),
      },
      'imitation_adder_vs_stock_adder': round(
          per_step['imitation_adder'] / per_step['stock_adder'], 3),
      'imitation_adder_vs_two_stock_adders': round(
          per_step['imitation_adder'] / per_step['two_stock_adders'], 3),
      'target_extra_le_2pct_of_env_step': bool(extra / env_step_s <= 0.02),
      'target_reward_le_2pct_of_env_step': bool(
          per_step['reward'] / env_step_s <= 0.02),
      'table_sizes': {k: v.current_size
                      for k, v in client.server_info().items()},
  }
  del stock, ours, two_stock, goal_conditioned, variants
  gc.collect()
  server.stop()
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--steps', type=int, default=1000)
  parser.add_argument('--vision_steps', type=int, default=100)
  parser.add_argument('--episode_length', type=int, default=50)
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--image_size', type=int, default=128)
  parser.add_argument('--max_replay_size', type=int, default=20_000)
  parser.add_argument('--presets', default='features,vision')
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  results = {p: bench_preset(p, args, rng) for p in args.presets.split(',')}
  print(json.dumps({'results': results,
                    'episode_length': args.episode_length,
                    'n_step': config_lib.features_config().n_step,
                    'cpus': len(os.sched_getaffinity(0))}))


if __name__ == '__main__':
  main()
