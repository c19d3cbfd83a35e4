"""Actor-side throughput: bare dm_control vs JacoStack vs actor loops; one JSON.

Variants (random actions unless said), all timed in one process in
interleaved rounds (every variant runs `steps` steps per round; the reported
rate is the median over rounds, so load from other processes on a shared CPU
hits all variants alike). Episode resets are part of the timed steps.

- bare_dm_control_25hz: `composer.Environment(bricks.stack_2_bricks_features())`,
  dm_control's stock task (25 Hz, all feature observables; features only).
- bare_dm_control_20hz: the same stack-2-bricks task and observables at our
  20 Hz control timestep, 400-step episodes: the same physics per step as
  `JacoStack`, hence the baseline of the target. Vision: the stock camera
  observable at image_size, stock render flags (shadows and reflections on).
- jaco_stack: our wrapper (vision: shadows and reflections off).
- d4pg_actor_loop: stock D4PG actor: `JacoStack` + Acme's `FeedForwardActor`
  (policy + D4PG noise) + `D4PGBuilder.make_adder`'s `NStepTransitionAdder`
  on the task table.
- task_actor_loop: MetaMimic's task actor: `MetaMimicBuilder.make_actor` (for
  MLP policies, `actors.NumpyFeedForwardActor`) and `make_adder`.
- imitation_loop_random: `ImitationEnvironment` + `ImitationRewardAdder`
  writing to both tables, random actions (all MetaMimic machinery, no policy).
- imitation_actor_loop: `ImitationEnvironment` + `MetaMimicBuilder.make_actor`
  with the goal-conditioned policy + `ImitationRewardAdder` (the imitation
  actor).

Replay is a real in-process Reverb server with both tables from
`MetaMimicBuilder.make_replay_tables` (features_config: MinSize limiter).
Imitation episodes follow scripted demonstrations; early termination is
'none' (episodes last the demo's length) unless --early_termination is given.

  .venv/bin/python bench/bench_actor.py
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
from acme.agents.tf import actors as acme_actors
from acme.agents.tf.d4pg import agent as d4pg_agent
from dm_control import composer
from dm_control.manipulation import bricks
from dm_control.manipulation.shared import arenas
from dm_control.manipulation.shared import observations as dm_observations
from dm_control.manipulation.shared import robots
import numpy as np
import reverb
import tensorflow as tf

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import networks
from acme_metamimic.demonstrations import dataset
from acme_metamimic.demonstrations import scripted
from acme_metamimic.environments import imitation
from acme_metamimic.environments import jaco_stack
# pylint: enable=g-import-not-at-top,wrong-import-position


def bare_env(control_timestep, image_size=None):
  """dm_control's stack-2-bricks with its own observables enabled."""
  if image_size is None:
    obs_settings = dm_observations.PERFECT_FEATURES
  else:
    vision = dm_observations.VISION
    obs_settings = vision._replace(camera=vision.camera._replace(
        height=image_size, width=image_size))
  task = bricks.Stack(
      arena=arenas.Standard(),
      arm=robots.make_arm(obs_settings=obs_settings),
      hand=robots.make_hand(obs_settings=obs_settings),
      num_bricks=2, target_height=2, moveable_base=False,
      randomize_order=False, obs_settings=obs_settings,
      workspace=bricks._WORKSPACE,  # pylint: disable=protected-access
      control_timestep=control_timestep)
  return composer.Environment(task, time_limit=20., random_state=0)


def make_demos(env, count, seed):
  demonstrator = scripted.ScriptedDemonstrator('A', seed=seed)
  demos = []
  for i in range(count):
    episode = scripted.run_episode(env, demonstrator)
    demos.append(dataset.Demonstration(
        observations={k: np.stack([o[k] for o in episode['observations']])
                      for k in episode['observations'][0]},
        physics_states=episode['physics_states'], rewards=episode['rewards'],
        success=episode['success'], episode_id=i))
  return demos


class EnvStepper:
  """Random actions on a dm_env (auto-resets inside `step`)."""

  def __init__(self, env, seed=0):
    self._env = env
    self._rng = np.random.default_rng(seed)
    spec = env.action_spec()
    self._low, self._high = spec.minimum, spec.maximum
    self._shape = spec.shape
    env.reset()

  def run(self, steps):
    for _ in range(steps):
      self._env.step(self._rng.uniform(self._low, self._high,
                                       self._shape).astype(np.float32))


class Loop:
  """The body of Acme's EnvironmentLoop: actor or random actions + adder."""

  def __init__(self, env, actor=None, adder=None, seed=0):
    self._env, self._actor, self._adder = env, actor, adder
    self._rng = np.random.default_rng(seed)
    self._timestep = None
    self.episodes = 0

  def run(self, steps):
    for _ in range(steps):
      if self._timestep is None or self._timestep.last():
        self._timestep = self._env.reset()
        self.episodes += 1
        if self._actor is not None:
          self._actor.observe_first(self._timestep)
        else:
          self._adder.add_first(self._timestep)
      if self._actor is not None:
        action = self._actor.select_action(self._timestep.observation)
      else:
        action = self._rng.uniform(-1., 1., 9).astype(np.float32)
      self._timestep = self._env.step(action)
      if self._actor is not None:
        self._actor.observe(action, next_timestep=self._timestep)
      else:
        self._adder.add(action, self._timestep)


def make_variants(preset, image_size, early_termination, num_demos, torso,
                  max_replay_size):
  """Builds every variant for one preset; returns ({name: runner}, extras)."""
  env_kwargs = dict(preset=preset, seed=0, image_size=image_size)
  obs_keys = ('features',) if preset == 'features' else ('image',)
  config = config_lib.features_config(
      early_termination=early_termination, max_replay_size=max_replay_size)
  builder = builder_lib.MetaMimicBuilder(config)

  demo_env = jaco_stack.make_environment(**env_kwargs)
  demos = make_demos(demo_env, num_demos, seed=1)
  env_spec = specs.make_environment_spec(demo_env)
  imitation_spec = imitation.imitation_environment_spec(env_spec)
  server = reverb.Server(builder.make_replay_tables(env_spec), port=None)
  client = reverb.Client(f'localhost:{server.port}')

  def policy(goal_conditioned):
    spec = imitation_spec if goal_conditioned else env_spec
    nets = networks.make_networks(env_spec, torso=torso,
                                  observation_keys=obs_keys,
                                  goal_conditioned=goal_conditioned)
    nets.init(spec)
    return nets.make_policy(spec, config.sigma)

  def imitation_env():
    return builder.make_imitation_environment(
        jaco_stack.make_environment(**env_kwargs), demos, seed=0)

  variants = {}
  if preset == 'features':
    variants['bare_dm_control_25hz'] = EnvStepper(composer.Environment(
        bricks.stack_2_bricks_features(), random_state=0))
    variants['bare_dm_control_20hz'] = EnvStepper(bare_env(0.05))
  else:
    variants['bare_dm_control_20hz'] = EnvStepper(bare_env(0.05, image_size))
  variants['jaco_stack'] = EnvStepper(jaco_stack.make_environment(**env_kwargs))
  variants['d4pg_actor_loop'] = Loop(
      jaco_stack.make_environment(**env_kwargs),
      actor=acme_actors.FeedForwardActor(
          policy(False),
          adder=d4pg_agent.D4PGBuilder.make_adder(builder, client)))
  variants['task_actor_loop'] = Loop(
      jaco_stack.make_environment(**env_kwargs),
      actor=builder.make_actor(policy(False), adder=builder.make_adder(client)))
  variants['imitation_loop_random'] = Loop(
      imitation_env(), adder=builder.make_imitation_adder(client))
  variants['imitation_actor_loop'] = Loop(
      imitation_env(),
      actor=builder.make_actor(policy(True),
                               adder=builder.make_imitation_adder(client)))
  extras = dict(server=server, client=client,
                demo_lengths=[len(d) for d in demos])
  return variants, extras


def time_variants(variants, steps, rounds, warmup):
  for runner in variants.values():
    runner.run(warmup)
  rates = {name: [] for name in variants}
  for _ in range(rounds):
    for name, runner in variants.items():
      start = time.perf_counter()
      runner.run(steps)
      rates[name].append(steps / (time.perf_counter() - start))
  return rates


def bench_preset(preset, args):
  image_size = args.image_size
  variants, extras = make_variants(
      preset, image_size, args.early_termination,
      args.num_demos, 'mlp' if preset == 'features' else args.vision_torso,
      args.max_replay_size if preset == 'features' else 2000)
  if preset == 'features':
    steps, rounds = args.steps, args.rounds
  else:
    steps, rounds = args.vision_steps, args.vision_rounds
  rates = time_variants(variants, steps, rounds, warmup=5)
  median = {k: statistics.median(v) for k, v in rates.items()}
  base = median['bare_dm_control_20hz']
  wrapper = median['jaco_stack']
  result = {
      'steps_per_round': steps,
      'rounds': rounds,
      'steps_per_s_median': {k: round(v, 1) for k, v in median.items()},
      'steps_per_s_rounds': {k: [round(x, 1) for x in v]
                             for k, v in rates.items()},
      'ratio_to_bare_20hz': {k: round(v / base, 3) for k, v in median.items()},
      'ratio_to_jaco_stack': {k: round(v / wrapper, 3)
                              for k, v in median.items()},
      'imitation_vs_d4pg_actor_loop': round(
          median['imitation_actor_loop'] / median['d4pg_actor_loop'], 3),
      'task_vs_d4pg_actor_loop': round(
          median['task_actor_loop'] / median['d4pg_actor_loop'], 3),
      # Speed issue targets: on features, the imitation actor loop at 0.60x
      # and the task actor loop at 0.70x `JacoStack`; on vision, the
      # imitation actor loop at 0.95x the stock D4PG actor loop.
      'targets_met': (
          {'imitation_actor_loop_ge_0.60_jaco_stack': bool(
              median['imitation_actor_loop'] / wrapper >= 0.6),
           'task_actor_loop_ge_0.70_jaco_stack': bool(
               median['task_actor_loop'] / wrapper >= 0.7)}
          if preset == 'features' else
          {'imitation_ge_0.95_d4pg_actor_loop': bool(
              median['imitation_actor_loop'] / median['d4pg_actor_loop']
              >= 0.95)}),
      'demo_lengths': extras['demo_lengths'],
      'table_sizes': {k: v.current_size
                      for k, v in extras['client'].server_info().items()},
  }
  if preset == 'vision':
    result['image_size'] = image_size
    result['policy_torso'] = args.vision_torso
  else:
    result['policy_torso'] = 'mlp'
  del variants  # Close the adders' writers before the server goes away.
  gc.collect()
  extras['server'].stop()
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--steps', type=int, default=300)
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--vision_steps', type=int, default=40)
  parser.add_argument('--vision_rounds', type=int, default=3)
  parser.add_argument('--image_size', type=int, default=128)
  parser.add_argument('--vision_torso', default='impala')
  parser.add_argument('--num_demos', type=int, default=2)
  parser.add_argument('--early_termination', default='none',
                      choices=config_lib.EARLY_TERMINATION_MODES)
  parser.add_argument('--max_replay_size', type=int, default=100_000)
  parser.add_argument('--presets', default='features,vision')
  args = parser.parse_args()
  tf.random.set_seed(0)
  results = {}
  for preset in args.presets.split(','):
    results[preset] = bench_preset(preset, args)
  print(json.dumps({
      'early_termination': args.early_termination,
      'results': results,
      'mujoco_gl': os.environ['MUJOCO_GL'],
      'cpus': len(os.sched_getaffinity(0)),
  }))


if __name__ == '__main__':
  main()
