"""Tests for acme_metamimic.networks."""

import copy
from typing import Dict

from acme import specs
from acme.tf import utils as tf2_utils
from acme.tf.networks import distributions
from acme_metamimic import networks
import numpy as np
import pytest
import sonnet as snt
import tensorflow as tf

ACTION_DIM = 9
FEATURES_DIM = 40
BATCH = 4


def _environment_spec(image_size: int = 64) -> specs.EnvironmentSpec:
  observations = {
      'body': specs.Array((18,), np.float32, 'body'),
      'hand_to_target': specs.Array((3,), np.float32, 'hand_to_target'),
      'features': specs.Array((FEATURES_DIM,), np.float32, 'features'),
      'image': specs.Array((image_size, image_size, 3), np.uint8, 'image'),
  }
  return specs.EnvironmentSpec(
      observations=observations,
      actions=specs.BoundedArray((ACTION_DIM,), np.float32, -1., 1., 'action'),
      rewards=specs.Array((), np.float32, 'reward'),
      discounts=specs.BoundedArray((), np.float32, 0., 1., 'discount'))


def _observation(rng: np.random.Generator,
                 image_size: int = 64) -> Dict[str, np.ndarray]:
  return {
      'body': rng.normal(size=(BATCH, 18)).astype(np.float32),
      'hand_to_target': rng.normal(size=(BATCH, 3)).astype(np.float32),
      'features': rng.normal(size=(BATCH, FEATURES_DIM)).astype(np.float32),
      'image': rng.integers(0, 256, size=(BATCH, image_size, image_size, 3),
                            dtype=np.uint8),
  }


def _perturbed(observation: Dict[str, np.ndarray], key: str,
               rng: np.random.Generator) -> Dict[str, np.ndarray]:
  result = dict(observation)
  if observation[key].dtype == np.uint8:
    result[key] = rng.integers(0, 256, size=observation[key].shape,
                               dtype=np.uint8)
  else:
    result[key] = rng.normal(size=observation[key].shape).astype(np.float32)
  return result


def _built(torso: str, keys, goal_conditioned: bool):
  environment_spec = _environment_spec()
  if goal_conditioned:
    environment_spec = networks.goal_conditioned_spec(environment_spec)
  d4pg_networks = networks.make_networks(
      environment_spec, torso=torso, observation_keys=keys,
      goal_conditioned=goal_conditioned)
  d4pg_networks.init(environment_spec)
  return d4pg_networks


def _conv_count(module: snt.Module) -> int:
  return sum(isinstance(m, snt.Conv2D) for m in module.submodules)


def _instance_norm_parameters(module: snt.Module) -> int:
  return sum(
      networks.count_parameters(m) for m in module.submodules
      if isinstance(m, snt.LayerNorm) and m.name == 'instance_norm')


def test_paper_resnet_parameter_count():
  torso = networks.PaperResNetTorso()
  embedding = torso(tf.zeros([1, 128, 128, 6], tf.float32))
  assert embedding.shape == (1, 1344)
  assert networks.count_parameters(torso) == 22_204_800
  assert 21_000_000 <= networks.count_parameters(torso) <= 23_500_000
  assert _conv_count(torso) == 20
  assert max(m.output_channels for m in torso.submodules
             if isinstance(m, snt.Conv2D)) == 512


def test_no_instance_norm_differs_only_by_norm_parameters():
  inputs = tf.zeros([1, 64, 64, 6], tf.float32)
  with_norm = networks.PaperResNetTorso(instance_norm=True)
  without_norm = networks.PaperResNetTorso(instance_norm=False)
  with_norm(inputs)
  without_norm(inputs)
  norm_parameters = _instance_norm_parameters(with_norm)
  # Scale and offset per channel after each of the 20 convolutions.
  assert norm_parameters == 2 * 5 * (64 + 128 + 256 + 512)
  assert _instance_norm_parameters(without_norm) == 0
  assert _conv_count(without_norm) == 20
  assert (networks.count_parameters(with_norm) -
          networks.count_parameters(without_norm)) == norm_parameters


def test_instance_norm_rejects_a_one_pixel_final_feature_map():
  with pytest.raises(ValueError, match='1x1 final feature map'):
    networks.PaperResNetTorso()(tf.zeros([1, 32, 32, 6]))
  networks.PaperResNetTorso(instance_norm=False)(tf.zeros([1, 32, 32, 6]))


def test_instance_norm_normalizes_each_channel_of_each_example():
  torso = networks.PaperResNetTorso()
  images = tf.random.uniform([2, 64, 64, 6])
  torso(images)
  norm = torso._stem_norm
  outputs = norm(torso._stem_conv(images)).numpy()
  np.testing.assert_allclose(outputs.mean(axis=(1, 2)), 0., atol=1e-4)
  np.testing.assert_allclose(outputs.std(axis=(1, 2)), 1., atol=1e-2)


def test_impala_parameter_count():
  torso = networks.ImpalaTorso()
  embedding = torso(tf.zeros([1, 128, 128, 6], tf.uint8))
  assert embedding.shape == (1, 256)
  assert _conv_count(torso) == 15
  assert networks.count_parameters(torso) == 2_195_440
  assert 2_100_000 <= networks.count_parameters(torso) <= 2_300_000


@pytest.mark.parametrize('torso,keys', [
    ('mlp', ('features',)),
    ('impala', ('image',)),
    ('paper_resnet', ('image',)),
    ('paper_resnet_no_instance_norm', ('image', 'body')),
])
@pytest.mark.parametrize('goal_conditioned', [False, True])
def test_policy_and_critic_outputs(torso, keys, goal_conditioned):
  d4pg_networks = _built(torso, keys, goal_conditioned)
  rng = np.random.default_rng(0)
  observation = _observation(rng)
  if goal_conditioned:
    observation = {'observation': observation, 'goal': _observation(rng)}
  embedding = d4pg_networks.observation_network(observation)
  actions = d4pg_networks.policy_network(embedding)
  assert actions.shape == (BATCH, ACTION_DIM)
  assert np.all(np.abs(actions.numpy()) <= 1.)
  value = d4pg_networks.critic_network(embedding, actions)
  assert isinstance(value, distributions.DiscreteValuedDistribution)
  np.testing.assert_allclose(value.values.numpy(), np.linspace(0., 100., 101),
                             rtol=1e-6, atol=1e-4)
  assert value.logits.shape == (BATCH, 101)
  assert value.mean().shape == (BATCH,)


@pytest.mark.parametrize('torso,keys', [
    ('mlp', ('features', 'body')),
    ('impala', ('image',)),
])
def test_goal_changes_policy_output(torso, keys):
  d4pg_networks = _built(torso, keys, goal_conditioned=True)
  policy = snt.Sequential([d4pg_networks.observation_network,
                           d4pg_networks.policy_network])
  rng = np.random.default_rng(1)
  observation = _observation(rng)
  goal = _observation(rng)
  actions = policy({'observation': observation, 'goal': goal}).numpy()
  for key in keys:
    other_goal = _perturbed(goal, key, rng)
    other_actions = policy({'observation': observation,
                            'goal': other_goal}).numpy()
    assert not np.array_equal(actions, other_actions), key
  same_actions = policy({'observation': observation, 'goal': goal}).numpy()
  np.testing.assert_array_equal(actions, same_actions)


@pytest.mark.parametrize('torso,keys', [
    ('mlp', ('body', 'features', 'hand_to_target')),
    ('paper_resnet', ('image', 'body', 'hand_to_target')),
])
def test_task_network_uses_every_requested_key(torso, keys):
  d4pg_networks = _built(torso, keys, goal_conditioned=False)
  encoder = d4pg_networks.observation_network
  rng = np.random.default_rng(2)
  observation = _observation(rng)
  embedding = encoder(observation).numpy()
  for key in keys:
    other = encoder(_perturbed(observation, key, rng)).numpy()
    assert np.abs(embedding - other).max() > 1e-6, key
  unused = [key for key in observation if key not in keys]
  for key in unused:
    other = encoder(_perturbed(observation, key, rng)).numpy()
    np.testing.assert_array_equal(embedding, other)


def test_goal_conditioned_images_are_stacked_on_channels():
  seen = []

  def torso(images):
    seen.append(images)
    return snt.Flatten()(images)

  encoder = networks.ObservationEncoder(('image', 'body'), torso,
                                        goal_conditioned=True)
  rng = np.random.default_rng(3)
  observation, goal = _observation(rng), _observation(rng)
  embedding = encoder({'observation': observation, 'goal': goal})
  images = seen[0].numpy()
  assert images.shape == (BATCH, 64, 64, 6)
  np.testing.assert_allclose(images[..., :3], observation['image'] / 255.,
                             atol=1e-6)
  np.testing.assert_allclose(images[..., 3:], goal['image'] / 255., atol=1e-6)
  np.testing.assert_array_equal(embedding[:, -36:-18], observation['body'])
  np.testing.assert_array_equal(embedding[:, -18:], goal['body'])


def test_scalar_observations_are_concatenated_as_one_column():
  encoder = networks.ObservationEncoder(('body', 'time'), tf.identity,
                                        goal_conditioned=False)
  embedding = encoder({'body': tf.ones([BATCH, 18]),
                       'time': tf.range(BATCH, dtype=tf.int32)})
  assert embedding.shape == (BATCH, 19)
  np.testing.assert_array_equal(embedding[:, -1], np.arange(BATCH))


def test_networks_survive_deepcopy_and_tf_function():
  d4pg_networks = _built('paper_resnet', ('image',), goal_conditioned=True)
  rng = np.random.default_rng(6)
  observation = {'observation': _observation(rng), 'goal': _observation(rng)}
  encoder = d4pg_networks.observation_network
  target_encoder = copy.deepcopy(encoder)
  signature = encoder._input_signature
  compiled = tf.function(target_encoder, input_signature=signature)
  np.testing.assert_allclose(encoder(observation).numpy(),
                             compiled(observation).numpy(), atol=1e-4)
  assert target_encoder.variables[0] is not encoder.variables[0]


def test_uint8_and_float_images_give_the_same_embedding():
  encoder = networks.ObservationEncoder(('image',), networks.ImpalaTorso(),
                                        goal_conditioned=False)
  images = np.random.default_rng(4).integers(0, 256, size=(BATCH, 64, 64, 3),
                                             dtype=np.uint8)
  np.testing.assert_allclose(
      encoder({'image': images}).numpy(),
      encoder({'image': images.astype(np.float32) / 255.}).numpy(), atol=1e-5)


def test_goal_conditioned_spec():
  environment_spec = _environment_spec()
  spec = networks.goal_conditioned_spec(environment_spec)
  assert set(spec.observations) == {'observation', 'goal'}
  assert spec.observations['observation'] == environment_spec.observations
  assert spec.observations['goal'] == environment_spec.observations
  assert spec.actions == environment_spec.actions
  embedding_spec = tf2_utils.create_variables(
      networks.ObservationEncoder(('features',), networks.MLPTorso((32,)),
                                  goal_conditioned=True),
      [spec.observations])
  assert embedding_spec.shape == (32,)


def test_make_networks_accepts_task_spec_or_action_spec():
  environment_spec = _environment_spec()
  for spec in (environment_spec, environment_spec.actions):
    d4pg_networks = networks.make_networks(spec, goal_conditioned=True)
    d4pg_networks.init(networks.goal_conditioned_spec(environment_spec))


def test_unknown_torso_raises():
  with pytest.raises(ValueError, match='paper_resnet_no_instance_norm'):
    networks.make_networks(_environment_spec(), torso='resnet50')


def test_missing_observation_key_raises():
  with pytest.raises(ValueError, match='pixels'):
    networks.make_networks(_environment_spec(), observation_keys=('pixels',))
  encoder = networks.ObservationEncoder(('features',), networks.MLPTorso(),
                                        goal_conditioned=True)
  observation = _observation(np.random.default_rng(5))
  with pytest.raises(KeyError, match='goal'):
    encoder(observation)


def test_key_sizes_keep_the_leading_entries_of_a_key():
  """`observation_key_sizes={'body': 9}`: the joint velocities are unseen.

  The embedding moves with body[:9] (the joint positions) and not with
  body[9:] (their velocities); a key not observed is refused by name.
  """
  environment_spec = _environment_spec()
  d4pg_networks = networks.make_networks(
      environment_spec, observation_keys=('body', 'features'),
      observation_key_sizes={'body': 9})
  d4pg_networks.init(environment_spec)
  encoder = d4pg_networks.observation_network
  rng = np.random.default_rng(3)
  observation = _observation(rng)
  embedding = encoder(observation).numpy()
  velocities = dict(observation, body=observation['body'].copy())
  velocities['body'][:, 9:] += 1.
  np.testing.assert_array_equal(encoder(velocities).numpy(), embedding)
  positions = dict(observation, body=observation['body'].copy())
  positions['body'][:, :9] += 1.
  assert np.abs(encoder(positions).numpy() - embedding).max() > 1e-6
  with pytest.raises(ValueError, match=r"\['image'\]"):
    networks.make_networks(environment_spec, observation_keys=('features',),
                           observation_key_sizes={'image': 9})
