"""The numpy policy computes what the Sonnet policy computes, on real specs."""

import acme
from acme import specs
from acme.utils import loggers
import numpy as np
import pytest
import tensorflow as tf

from acme_metamimic import actors
from acme_metamimic import agent as agent_lib
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import environments
from acme_metamimic import networks
from acme_metamimic.demonstrations import scripted
from acme_metamimic.environments import imitation

KEYS = ('body', 'features')
# numpy and TF sum the float32 matmuls in different orders. With the test's
# weights the actions differed by at most 1.2e-6 over 10 weight draws x 20
# observations x the 5 network kinds below (measured 2026-11-27; N(0, 0.3)
# weights gave up to 2.9e-5, and CI once 1.6e-5 against a 1e-5 bound); a wrong
# layer or a stale weight moves them by more than 1e-3.
ATOL = 1e-4


@pytest.fixture(scope='module')
def env():
  return environments.make_environment('features', seed=2)


def _observations(goal_conditioned, num=5):
  """Real observations (goals: later frames of the same random rollout).

  The same ones in every call, whatever other tests did before: a fresh
  environment with a fixed seed (the module's `env` moves on with each
  reset, and in one order of the tests a later state once drove every
  action of a random-weight policy to the same bound).
  """
  env = environments.make_environment('features', seed=2)
  rng = np.random.default_rng(0)
  frames = [env.reset().observation]
  for _ in range(num):
    frames.append(env.step(rng.uniform(-1, 1, 9).astype(np.float32))
                  .observation)
  if not goal_conditioned:
    return frames[:num]
  return [{'observation': frames[i], 'goal': frames[i + 1]}
          for i in range(num)]


def _normalization(spec):
  # Offsets and scales per dimension of the same order as the observations
  # (a uniform one would commute with a wrong dimension order), and tight
  # enough that some inputs reach the clip.
  rng = np.random.default_rng(3)
  return {key: (rng.normal(0., 0.5, spec.observations[key].shape),
                rng.uniform(0.02, 0.5, spec.observations[key].shape))
          for key in KEYS}


@pytest.mark.parametrize('goal_conditioned,delta,normalize', [
    (False, None, False), (True, None, False), (True, 100., False),
    (False, None, True), (True, 100., True)])
def test_numpy_policy_matches_the_sonnet_policy(env, goal_conditioned, delta,
                                                normalize):
  spec = specs.make_environment_spec(env)
  network_spec = (imitation.imitation_environment_spec(spec)
                  if goal_conditioned else spec)
  nets = networks.make_networks(
      spec, observation_keys=KEYS, goal_conditioned=goal_conditioned,
      goal_delta_scale=delta,
      normalization=_normalization(spec) if normalize else None)
  nets.init(network_spec)
  # Non-trivial weights: a near-zero final layer would make any two policies
  # agree, and so would one saturated at the action bounds. N(0, 0.3) for
  # every variable drove most actions to +-1 (and on CI, every action of one
  # observation to -1); kernels scaled by 1/sqrt(fan-in) keep the last
  # layer's inputs of order one.
  rng = np.random.default_rng(1)
  for variable in nets.policy_network.variables:
    scale = (1.5 / np.sqrt(variable.shape[0]) if len(variable.shape) == 2
             else 0.3)
    variable.assign(rng.normal(0., scale, variable.shape).astype(np.float32))
  greedy = nets.make_policy(network_spec, sigma=0.)
  policy = actors.NumpyPolicy(greedy)
  for observation in _observations(goal_conditioned):
    batched = tf.nest.map_structure(lambda x: x[None], observation)
    expected = greedy(batched).numpy()
    np.testing.assert_allclose(policy(batched), expected, rtol=1e-4,
                               atol=ATOL)
    assert not np.allclose(expected, expected.mean())
    assert np.sum(np.abs(expected) < 0.99) >= 3, expected  # Not saturated.

  # New weights reach the numpy policy on refresh, not before.
  for variable in nets.policy_network.variables:
    variable.assign(variable * 0.5)
  observation = tf.nest.map_structure(lambda x: x[None],
                                      _observations(goal_conditioned)[0])
  assert not np.allclose(policy(observation), greedy(observation).numpy(),
                         atol=1e-3)
  policy.refresh()
  np.testing.assert_allclose(policy(observation), greedy(observation).numpy(),
                             rtol=1e-4, atol=ATOL)


def test_exploration_noise_is_clipped_gaussian_with_sigma(env):
  spec = specs.make_environment_spec(env)
  nets = networks.make_networks(spec, observation_keys=KEYS)
  nets.init(spec)
  policy = actors.NumpyPolicy(nets.make_policy(spec, sigma=0.3), seed=0)
  greedy = actors.NumpyPolicy(nets.make_policy(spec, sigma=0.))
  observation = tf.nest.map_structure(lambda x: x[None],
                                      _observations(False)[0])
  noise = np.stack([policy(observation) - greedy(observation)
                    for _ in range(2000)])
  assert noise.shape == (2000, 1, 9)
  assert np.abs(noise.std() - 0.3) < 0.02
  actions = np.stack([policy(observation) for _ in range(200)])
  assert actions.min() >= -1. and actions.max() <= 1.


def test_image_policies_fall_back_to_acmes_actor():
  env = environments.make_environment('vision', seed=0, image_size=32)
  spec = specs.make_environment_spec(env)
  nets = networks.make_networks(spec, torso='impala',
                                observation_keys=('image',))
  nets.init(spec)
  with pytest.raises(NotImplementedError):
    actors.NumpyPolicy(nets.make_policy(spec, sigma=0.))
  builder = builder_lib.MetaMimicBuilder(config_lib.features_config())
  actor = builder.make_actor(nets.make_policy(spec, sigma=0.))
  assert not isinstance(actor, actors.NumpyFeedForwardActor)


def test_numpy_actors_follow_the_learners_in_the_single_process_agent(env):
  """The actors share the learners' variables; `update` re-reads them."""
  spec = specs.make_environment_spec(env)
  small = dict(mlp_torso_sizes=(16,), policy_layer_sizes=(16,),
               critic_layer_sizes=(16,))
  config = config_lib.features_config(min_replay_size=10, batch_size=8,
                                      samples_per_insert=4.,
                                      early_termination='none')
  task_networks = networks.make_networks(spec, observation_keys=KEYS, **small)
  metamimic = agent_lib.MetaMimic(
      spec, networks.make_networks(spec, observation_keys=KEYS,
                                   goal_conditioned=True, **small),
      task_networks, config,
      logger_factory=lambda label: loggers.NoOpLogger())
  task_actor = metamimic.task_actor
  assert isinstance(task_actor, actors.NumpyFeedForwardActor)
  observation = tf.nest.map_structure(lambda x: x[None],
                                      _observations(False, 1)[0])
  greedy_tf = task_networks.make_policy(spec, sigma=0.)
  before = greedy_tf(observation).numpy()
  demo = scripted.record_demonstration(
      env, scripted.ScriptedDemonstrator('A', seed=0))
  im_env = metamimic.builder.make_imitation_environment(env, [demo], seed=0)
  acme.EnvironmentLoop(im_env, metamimic, logger=loggers.NoOpLogger()).run(
      num_steps=60)
  assert metamimic.learner.task_learner.state['num_steps'].numpy() > 0
  after = greedy_tf(observation).numpy()
  assert not np.allclose(before, after)
  # The actor's numpy copy of the policy follows on `update`.
  task_actor.update()
  policy = task_actor._policy  # pylint: disable=protected-access
  for weight, variable in zip(policy._weights, policy._variables):  # pylint: disable=protected-access
    np.testing.assert_array_equal(weight, variable.numpy())
