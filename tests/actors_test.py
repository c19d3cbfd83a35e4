"""The numpy policy computes what the Sonnet policy computes, on real specs."""

import copy
import time

import acme
from acme import specs
from acme import types
from acme.utils import loggers
import numpy as np
import pytest
import reverb
import sonnet as snt
import tensorflow as tf
import tree

from acme_metamimic import actors
from acme_metamimic import adders
from acme_metamimic import agent as agent_lib
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import environments
from acme_metamimic import learning
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


@pytest.mark.parametrize('goal_conditioned,delta,normalize,skip,sizes', [
    (False, None, False, False, None), (True, None, False, False, None),
    (True, 100., False, False, None), (False, None, True, False, None),
    (True, 100., True, False, None), (True, 10., False, True, None),
    (False, None, True, False, {'body': 9})])
def test_numpy_policy_matches_the_sonnet_policy(env, goal_conditioned, delta,
                                                normalize, skip, sizes):
  spec = specs.make_environment_spec(env)
  network_spec = (imitation.imitation_environment_spec(spec)
                  if goal_conditioned else spec)
  nets = networks.make_networks(
      spec, observation_keys=KEYS, goal_conditioned=goal_conditioned,
      goal_delta_scale=delta,
      normalization=_normalization(spec) if normalize else None,
      goal_delta_skip=skip, observation_key_sizes=sizes)
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


class _RecordingAdder(acme.adders.Adder):
  """Keeps what an actor passes to `add` (the actor's side of the contract)."""

  def __init__(self):
    self.added = []

  def add_first(self, timestep):
    pass

  def add(self, action, next_timestep, extras=()):
    self.added.append((action, extras))

  def reset(self):
    pass


def test_actors_with_a_clone_weight_pass_their_noise_free_action(env):
  """`clone_weight`: the numpy actor and the tracker's `FunctionActor` pass
  their adder the action before the exploration noise (clipped to [-1, 1])
  and the weight as extras; without it they pass no extras."""
  spec = specs.make_environment_spec(env)
  nets = networks.make_networks(spec, observation_keys=KEYS)
  nets.init(spec)
  observations = _observations(False)
  greedy_policy = actors.NumpyPolicy(nets.make_policy(spec, sigma=0.))
  raw = np.array([1.5, -0.2, 0., 0.3, -2., 0.1, 0.5, -0.5, 0.9], np.float32)
  made = {
      'numpy': lambda adder, weight: actors.NumpyFeedForwardActor(
          nets.make_policy(spec, sigma=0.3), adder, seed=0,
          clone_weight=weight),
      'function': lambda adder, weight: actors.FunctionActor(
          lambda observation: raw, adder, sigma=0.3, seed=0,
          clone_weight=weight)}
  for kind, make in made.items():
    for weight in (1., 0., None):
      adder = _RecordingAdder()
      actor = make(adder, weight)
      timestep = env.reset()
      actor.observe_first(timestep)
      expected = []
      for observation in observations:
        action = actor.select_action(observation)
        actor.observe(action, timestep)
        expected.append(np.clip(raw, -1., 1.) if kind == 'function' else
                        greedy_policy(tree.map_structure(
                            lambda x: x[None], observation))[0])
      for (action, extras), greedy in zip(adder.added, expected):
        if weight is None:
          assert extras == (), kind
          continue
        assert extras[adders.CLONE_WEIGHT] == weight, kind
        np.testing.assert_allclose(extras[adders.GREEDY_ACTION], greedy,
                                   atol=ATOL, err_msg=kind)
        assert np.abs(action - greedy).max() > 0.05, kind  # Noise executed.


def test_per_dimension_noise_has_each_dimensions_sigma_in_tf_and_numpy(env):
  # MetaMimicConfig.sigma_per_dimension: the fingers' noise apart from the
  # arm's. Acme's ClippedGaussian with a vector of scales adds an axis.
  spec = specs.make_environment_spec(env)
  nets = networks.make_networks(spec, observation_keys=KEYS)
  nets.init(spec)
  sigma = (0.3,) * 6 + (0.05,) * 3
  noisy = networks.make_behavior_policy(nets, spec, sigma)
  greedy = networks.make_behavior_policy(nets, spec, 0.)
  observation = tf.nest.map_structure(lambda x: x[None],
                                      _observations(False)[0])
  mean = greedy(observation).numpy()
  assert np.all(np.abs(mean) < 0.5)  # Little clipping at +-1.
  tf_noise = np.concatenate([
      noisy(tf.nest.map_structure(lambda x: tf.repeat(x, 2000, axis=0),
                                  observation)).numpy() - mean])
  numpy_policy = actors.NumpyPolicy(noisy, seed=0)
  numpy_noise = np.concatenate([numpy_policy(observation) - mean
                                for _ in range(2000)])
  for noise in (tf_noise, numpy_noise):
    assert noise.shape == (2000, 9)
    np.testing.assert_allclose(noise.std(axis=0), sigma, rtol=0.1)
  with pytest.raises(ValueError, match='sigma_per_dimension has 2 entries'):
    networks.make_behavior_policy(nets, spec, (0.1, 0.2))


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


def _transitions(num):
  """A batch of `num` real task transitions (random actions and rewards)."""
  frames = _observations(False, num + 1)

  def stack(observations):
    return tree.map_structure(lambda *leaves: np.stack(leaves), *observations)

  rng = np.random.default_rng(4)
  return types.Transition(
      observation=stack(frames[:-1]),
      action=rng.uniform(-1, 1, (num, 9)).astype(np.float32),
      reward=rng.uniform(0, 1, num).astype(np.float32),
      discount=np.ones(num, np.float32),
      next_observation=stack(frames[1:]))


def test_numpy_actor_acts_with_a_real_learners_new_weights(env):
  """A `NumpyFeedForwardActor` whose variable source is a `D4PGLearner`.

  As in the distributed program: the actor has its own networks and pulls
  the learner's `policy` variables (Acme's: the target observation and
  policy networks). After the learner's steps and the actor's `update()`,
  the numpy policy acts as the TF policy with the learner's new weights; a
  numpy copy that is not refreshed keeps acting with the old ones.
  """
  spec = specs.make_environment_spec(env)
  small = dict(mlp_torso_sizes=(16,), policy_layer_sizes=(16,),
               critic_layer_sizes=(16,))
  online = networks.make_networks(spec, observation_keys=KEYS, **small)
  target = copy.deepcopy(online)
  online.init(spec)
  target.init(spec)
  batch = _transitions(8)
  info = reverb.SampleInfo(key=np.zeros(8, np.uint64),
                           probability=np.ones(8, np.float64),
                           table_size=np.ones(8, np.int64),
                           priority=np.ones(8, np.float64))
  learner = learning.D4PGLearner(
      policy_network=online.policy_network,
      critic_network=online.critic_network,
      observation_network=online.observation_network,
      target_policy_network=target.policy_network,
      target_critic_network=target.critic_network,
      target_observation_network=target.observation_network,
      policy_optimizer=snt.optimizers.Adam(1e-2),
      critic_optimizer=snt.optimizers.Adam(1e-2),
      discount=0.99, target_update_period=2,
      dataset_iterator=iter(tf.data.Dataset.from_tensors(
          reverb.ReplaySample(info=info, data=batch)).repeat()),
      logger=loggers.NoOpLogger(), checkpoint=False, jit_compile=False)
  # The learner's policy as the actor receives it.
  learners_policy = target.make_policy(spec, sigma=0.)
  actor_networks = networks.make_networks(spec, observation_keys=KEYS,
                                          **small)
  actor_networks.init(spec)
  actor = actors.NumpyFeedForwardActor(
      actor_networks.make_policy(spec, sigma=0.), variable_source=learner,
      update_period=1)
  observations = _observations(False)

  def actions():
    """(numpy actor's, learner's TF policy's) actions on `observations`."""
    numpy_actions = np.stack([actor.select_action(o) for o in observations])
    tf_actions = np.concatenate([
        learners_policy(tree.map_structure(lambda x: x[None], o)).numpy()
        for o in observations])
    return numpy_actions, tf_actions

  # The actor acts with the learner's weights from the start.
  numpy_actions, tf_actions = actions()
  np.testing.assert_allclose(numpy_actions, tf_actions, rtol=1e-4, atol=ATOL)
  before = tf_actions

  # Copies to the targets at steps 0 and 2: the exposed weights are the
  # online ones after two updates.
  for _ in range(3):
    learner.step()
  numpy_actions, tf_actions = actions()
  assert np.abs(tf_actions - before).max() > 1e-2, 'The learner did not move.'
  np.testing.assert_allclose(numpy_actions, before, rtol=1e-4, atol=ATOL)

  actor.update(wait=True)
  numpy_actions, tf_actions = actions()
  np.testing.assert_allclose(numpy_actions, tf_actions, rtol=1e-4, atol=ATOL)

  # As the environment loop calls it (no wait): the request runs in the
  # background and a later `update()` copies its result. Copy at step 4.
  before = tf_actions
  for _ in range(2):
    learner.step()
  deadline = time.monotonic() + 10.
  while time.monotonic() < deadline:
    actor.update()
    numpy_actions, tf_actions = actions()
    if np.allclose(numpy_actions, tf_actions, rtol=1e-4, atol=ATOL):
      break
    time.sleep(0.01)
  assert np.abs(tf_actions - before).max() > 1e-2, 'The learner did not move.'
  np.testing.assert_allclose(numpy_actions, tf_actions, rtol=1e-4, atol=ATOL)
