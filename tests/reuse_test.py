"""MetaMimicBuilder reused on another dm_control environment, unchanged.

Issue 4 asks for the builder to work with any environment whose physics state
can be set. Here: the dm_control suite's `point_mass` (easy), wrapped in Acme's
`SinglePrecisionWrapper`, with tiny demonstrations written below (a PD
controller that drives the mass to a fixed point; observations and
`physics.get_state()` recorded per frame). The imitation reward compares the
`position` (body term) and `velocity` (scene term) observations. Everything
runs under plain `acme.EnvironmentLoop`s; no package code knows about
point_mass.
"""

import acme
from acme import specs
from acme import wrappers
from acme.utils import loggers
from dm_control import suite
import numpy as np
import pytest
import tensorflow as tf

from acme_metamimic import agent as agent_lib
from acme_metamimic import config as config_lib
from acme_metamimic import networks
from acme_metamimic.demonstrations import dataset
from acme_metamimic.environments import imitation

KEYS = ('position', 'velocity')
DEMO_STEPS = 25
SMALL = dict(mlp_torso_sizes=(16,), policy_layer_sizes=(16,),
             critic_layer_sizes=(16,))


def _make_environment(seed):
  return wrappers.SinglePrecisionWrapper(
      suite.load('point_mass', 'easy', task_kwargs={'random': seed}))


def _pd_demonstration(env, target, episode_id, num_steps=DEMO_STEPS):
  """Drives the point mass towards `target`; records frames and states."""
  timestep = env.reset()
  observations = [timestep.observation]
  states = [imitation.get_state(env)]
  task_rewards = []
  for _ in range(num_steps):
    position = timestep.observation['position']
    velocity = timestep.observation['velocity']
    action = np.clip(8. * (target - position) - 1. * velocity, -1., 1.)
    timestep = env.step(action.astype(np.float32))
    observations.append(timestep.observation)
    states.append(imitation.get_state(env))
    task_rewards.append(timestep.reward)
  return dataset.Demonstration(
      observations={key: np.stack([o[key] for o in observations])
                    for key in observations[0]},
      physics_states=np.stack(states),
      rewards=np.asarray(task_rewards, np.float64),
      success=True,
      episode_id=episode_id)


@pytest.fixture(scope='module')
def demos():
  env = _make_environment(seed=7)
  targets = [np.array([0.1, -0.1]), np.array([-0.15, 0.05])]
  return [_pd_demonstration(env, target, i) for i, target in enumerate(targets)]


def test_demonstrations_replay_exactly_from_their_states(demos):
  env = _make_environment(seed=11)
  demo = demos[0]
  timestep = imitation.reset_to_state(env, demo.physics_states[3])
  np.testing.assert_allclose(timestep.observation['position'],
                             demo.observations['position'][3], atol=1e-6)
  np.testing.assert_allclose(timestep.observation['velocity'],
                             demo.observations['velocity'][3], atol=1e-6)


def test_metamimic_runs_on_point_mass_under_plain_environment_loops(demos):
  tf.random.set_seed(0)
  env = _make_environment(seed=1)
  spec = specs.make_environment_spec(env)
  config = config_lib.MetaMimicConfig(
      reward_body_key='position', reward_scene_key='velocity',
      feature_distance_scale=1., early_termination='none',
      batch_size=8, min_replay_size=16, samples_per_insert=4.,
      n_step=2, num_imitation_actors=1, num_task_actors=1,
      max_replay_size=1000, seed=0)
  agent = agent_lib.MetaMimic(
      spec,
      networks.make_networks(spec, observation_keys=KEYS,
                             goal_conditioned=True, **SMALL),
      networks.make_networks(spec, observation_keys=KEYS, **SMALL),
      config, logger_factory=lambda label: loggers.NoOpLogger())

  im_env = agent.builder.make_imitation_environment(env, demos, seed=0)
  observer = imitation.ImitationMetricsObserver()
  acme.EnvironmentLoop(im_env, agent, logger=loggers.NoOpLogger(),
                       observers=[observer]).run(num_episodes=2)
  metrics = observer.get_metrics()
  assert metrics['steps'] == DEMO_STEPS
  assert 0. < metrics['imitation_return'] <= (
      DEMO_STEPS * agent.builder.make_imitation_reward().maximum)
  sizes = agent.table_sizes()
  assert sizes['imitation'] == sizes['task'] > 0

  task_env = _make_environment(seed=2)
  acme.EnvironmentLoop(task_env, agent.task_actor,
                       logger=loggers.NoOpLogger()).run(num_steps=30)
  grown = agent.table_sizes()
  assert grown['imitation'] == sizes['imitation']
  assert grown['task'] >= sizes['task'] + 25

  imitation_steps = agent.learner.imitation_learner._num_steps.numpy()
  assert imitation_steps > 0
  assert agent.learner.task_learner._num_steps.numpy() == imitation_steps
  priorities = [s.info.priority for s in agent.replay_client.sample(
      config_lib.IMITATION_TABLE, num_samples=50, emit_timesteps=False)]
  assert any(p != config.initial_priority for p in priorities)
