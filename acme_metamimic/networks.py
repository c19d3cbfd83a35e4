"""Networks for MetaMimic: image/feature torsos and D4PG policy/critic heads.

The paper (Le Paine et al., 2018, Figure 3 and section 2.1) uses a residual
network with twenty convolution layers (up to 512 channels, ~22M parameters),
instance normalization between convolution layers, layer normalization between
fully connected layers and ELU activations, for both the imitation policy
pi(o_t, d_{t+1}) and the task policy pi(o_t) (which receives no goal). It is
compared with the IMPALA deep network (Espeholt et al., 2018) and with the same
large network without instance normalization.

Every network here is a D4PG network triple
(`acme.agents.tf.d4pg.D4PGNetworks`): an observation network
(`ObservationEncoder`, holding the torso) shared by a deterministic policy and
a distributional critic.
"""

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

from acme import specs
from acme import types
from acme.agents.tf.d4pg import agent as d4pg_agent
from acme.tf import networks
from acme.tf.networks import vision
import numpy as np
import sonnet as snt
import tensorflow as tf

from acme_metamimic.environments import imitation

# The imitation observation layout is the imitation environment's.
OBSERVATION_KEY = imitation.OBSERVATION
GOAL_KEY = imitation.GOAL
goal_conditioned_spec = imitation.imitation_environment_spec

TORSOS = ('mlp', 'paper_resnet', 'paper_resnet_no_instance_norm', 'impala')

Activation = Callable[[tf.Tensor], tf.Tensor]
# key -> (per-dimension offsets, per-dimension scales) of a vector observation.
Normalization = Mapping[str, tuple]
# Normalized inputs are clipped to +-this: a value far outside the demos'
# range (a brick knocked off the table) cannot saturate the first layer.
NORMALIZED_CLIP = 10.


def count_parameters(module: snt.Module) -> int:
  """Returns the number of scalar parameters in a (built) Sonnet module."""
  return int(sum(np.prod(v.shape) for v in module.variables))


def _instance_norm() -> snt.LayerNorm:
  """Instance normalization for NHWC feature maps.

  A `snt.LayerNorm` over the spatial axes (1, 2) normalizes each channel of
  each example separately (Ulyanov et al.); its learned scale and offset have
  one entry per channel (Sonnet's parameter shape is the channel axis).

  Returns:
    The normalization module.
  """
  return snt.LayerNorm(axis=[1, 2], create_scale=True, create_offset=True,
                       name='instance_norm')


class _ResidualBlock(snt.Module):
  """ResNet basic block: two 3x3 convolutions and a shortcut.

  out = elu(norm(conv(elu(norm(conv(x))))) + shortcut(x)), where the shortcut
  is the identity, or a strided 1x1 convolution (followed by norm) when the
  stride or channel count changes. `norm` is instance norm or the identity.
  """

  def __init__(self, channels: int, stride: int, project: bool,
               instance_norm: bool, activation: Activation,
               name: Optional[str] = None):
    super().__init__(name=name)
    self._activation = activation
    norm = _instance_norm if instance_norm else lambda: tf.identity
    self._conv_0 = snt.Conv2D(channels, 3, stride=stride, name='conv_0')
    self._norm_0 = norm()
    self._conv_1 = snt.Conv2D(channels, 3, name='conv_1')
    self._norm_1 = norm()
    self._shortcut = None
    if project:
      self._shortcut = snt.Sequential([
          snt.Conv2D(channels, 1, stride=stride, name='projection'), norm()])

  def __call__(self, inputs: tf.Tensor) -> tf.Tensor:
    outputs = self._activation(self._norm_0(self._conv_0(inputs)))
    outputs = self._norm_1(self._conv_1(outputs))
    shortcut = inputs if self._shortcut is None else self._shortcut(inputs)
    return self._activation(outputs + shortcut)


def _to_float_image(images: tf.Tensor) -> tf.Tensor:
  """uint8 images in [0, 255] -> float32 in [0, 1]; float images are kept."""
  if images.dtype == tf.uint8:
    return tf.cast(images, tf.float32) / 255.
  return tf.cast(images, tf.float32)


def _flatten(vectors: tf.Tensor) -> tf.Tensor:
  """[B, ...] -> float32 [B, N] (a [B] tensor becomes [B, 1])."""
  size = int(np.prod(vectors.shape[1:], dtype=int))
  return tf.reshape(tf.cast(vectors, tf.float32), [tf.shape(vectors)[0], size])


class PaperResNetTorso(snt.Module):
  """MetaMimic's large residual torso (paper Figure 3), ResNet34-inspired.

  Layout (NHWC, 'SAME' padding, conv biases kept in both variants so that the
  ablation differs only by the normalization parameters):

    stem:    7x7 conv, 64 channels, stride 2 -> norm -> ELU -> 3x3 max-pool /2
    stage 1: 2 basic blocks, 64 channels,  stride 1
    stage 2: 2 basic blocks, 128 channels, first block stride 2 (1x1 projection)
    stage 3: 2 basic blocks, 256 channels, first block stride 2 (1x1 projection)
    stage 4: 2 basic blocks, 512 channels, first block stride 2 (1x1 projection)
    head:    flatten -> Linear(1344) -> LayerNorm -> ELU

  That is 1 + 4 * 2 * 2 + 3 = 20 convolution layers (16 3x3 block convolutions,
  the stem, and three 1x1 projection shortcuts), with instance normalization
  (per example, per channel over H and W; see `_instance_norm`) after every
  convolution. A basic block is described in `_ResidualBlock`.

  At a 128x128x6 input (observation and goal RGB images stacked on channels)
  the final feature map is 4x4x512 and the torso has 22,204,800 parameters
  (11,181,120 convolution, 9,600 instance norm, 11,014,080 head);
  `instance_norm=False` gives 22,195,200. The head's input size, and so its
  parameter count, scales with the image area. The total stride is 32; inputs
  of 32x32 or smaller give a 1x1 final map, which instance normalization maps
  to a constant, so they are rejected when `instance_norm` is on.
  """

  def __init__(self, instance_norm: bool = True, output_size: int = 1344,
               channels: Sequence[int] = (64, 128, 256, 512),
               blocks_per_stage: int = 2, activation: Activation = tf.nn.elu,
               name: str = 'paper_resnet_torso'):
    """Creates the torso.

    Args:
      instance_norm: whether to apply instance normalization after every
        convolution (the paper's best network) or not (its ablation).
      output_size: size of the fully connected output layer.
      channels: channels of each stage; stages after the first halve the
        spatial resolution.
      blocks_per_stage: residual blocks per stage.
      activation: the nonlinearity (ELU in the paper).
      name: module name.
    """
    super().__init__(name=name)
    self._instance_norm = instance_norm
    self._activation = activation
    self._stem_conv = snt.Conv2D(channels[0], 7, stride=2, name='stem_conv')
    self._stem_norm = _instance_norm() if instance_norm else tf.identity
    self._blocks = []
    in_channels = channels[0]
    for stage, stage_channels in enumerate(channels):
      for block in range(blocks_per_stage):
        stride = 2 if stage > 0 and block == 0 else 1
        self._blocks.append(_ResidualBlock(
            stage_channels, stride=stride,
            project=stride != 1 or in_channels != stage_channels,
            instance_norm=instance_norm, activation=activation,
            name=f'stage_{stage}_block_{block}'))
        in_channels = stage_channels
    self._head = snt.Sequential([
        snt.Flatten(),
        snt.Linear(output_size, name='fc'),
        snt.LayerNorm(axis=-1, create_scale=True, create_offset=True,
                      name='fc_layer_norm'),
        activation,
    ])

  def __call__(self, images: tf.Tensor) -> tf.Tensor:
    """Embeds [B, H, W, C] images (uint8 or float in [0, 1]) as [B, D]."""
    outputs = self._activation(
        self._stem_norm(self._stem_conv(_to_float_image(images))))
    outputs = tf.nn.max_pool2d(outputs, ksize=3, strides=2, padding='SAME')
    for block in self._blocks:
      outputs = block(outputs)
    if self._instance_norm and outputs.shape[1:3].as_list() == [1, 1]:
      raise ValueError(
          f'Images of shape {images.shape[1:3]} give a 1x1 final feature map, '
          'which instance normalization maps to a constant; use >= 33x33.')
    return self._head(outputs)


class ImpalaTorso(vision.ResNetTorso):
  """IMPALA deep residual torso (Espeholt et al., 2018): acme's ResNetTorso.

  Three stages of [3x3 conv, 3x3 max-pool /2, 2 residual blocks of 2 convs]
  with (16, 32, 32) channels = 15 convolution layers, then a 256-unit fully
  connected layer. The paper quotes ~1.6M parameters (IMPALA's Atari input);
  at a 128x128x6 input the final feature map is 16x16x32 and the torso has
  2,195,440 parameters (98,032 convolution, 2,097,408 fully connected); at
  128x128x3 it has 2,195,008. The fully connected layer dominates: at IMPALA's
  96x72 Atari input it would be ~1.0M.
  """

  def __init__(self, output_size: int = 256,
               activation: Activation = tf.nn.relu,
               name: str = 'impala_torso'):
    """Creates the torso.

    Args:
      output_size: size of the fully connected output layer.
      activation: the nonlinearity (ReLU in IMPALA).
      name: module name.
    """
    super().__init__(num_channels=(16, 32, 32), num_blocks=(2, 2, 2),
                     num_output_hidden=(output_size,), activation=activation,
                     name=name)

  def __call__(self, images: tf.Tensor) -> tf.Tensor:
    """Embeds [B, H, W, C] images (uint8 or float in [0, 1]) as [B, D]."""
    return super().__call__(_to_float_image(images))


class MLPTorso(snt.Module):
  """Torso for vector (feature) observations.

  Flattens and concatenates its (nested) float inputs and applies acme's
  `LayerNormMLP` (Linear -> LayerNorm -> tanh, then ELU layers, final ELU).
  """

  def __init__(self, layer_sizes: Sequence[int] = (256, 256),
               name: str = 'mlp_torso'):
    """Creates the torso.

    Args:
      layer_sizes: sizes of the MLP's layers.
      name: module name.
    """
    super().__init__(name=name)
    self._mlp = networks.LayerNormMLP(layer_sizes, activation=tf.nn.elu,
                                      activate_final=True)

  def __call__(self, inputs: types.NestedTensor) -> tf.Tensor:
    """Embeds a nest of [B, ...] tensors as [B, D]."""
    return self._mlp(tf.nest.map_structure(
        lambda x: tf.cast(x, tf.float32), inputs))


class ObservationEncoder(snt.Module):
  """Observation network: selects observation keys and applies a torso.

  Input: the environment's observation dict (task networks), or, when
  `goal_conditioned`, `{'observation': obs_dict, 'goal': goal_dict}` where
  `goal_dict` has the same keys and shapes as `obs_dict` (the demonstration's
  next frame d_{t+1}). Other keys are ignored.

  Each selected key is classified at call time by rank: a [B, H, W, C] tensor
  is an image, anything else a vector.
  - Images are converted to float32 in [0, 1] (uint8 is divided by 255, float
    is taken as already in [0, 1]) and concatenated on the channel axis in the
    order: observation images (in `keys` order), then goal images. A
    goal-conditioned 'image' key therefore gives [B, H, W, 6].
  - Vectors are cast to float32; with `normalization`, a key it names becomes
    clip((x - offset) / scale, +-NORMALIZED_CLIP), observation and goal
    alike (the offsets and scales are constants, not variables: see
    `environments.observation_scales`). They are flattened and concatenated
    in the order: observation vectors (in `keys` order), then goal vectors.
    With `goal_delta_scale`, each goal vector g is replaced by
    goal_delta_scale * (g - o): the per-step difference between o_t and
    d_{t+1} is tiny next to the absolute values and is otherwise swamped
    (tests/learning_test.py measures the difference). With `goal_delta_skip`
    too, these scaled differences are also appended to the embedding, past
    the torso, so that the D4PG heads' first layers see them directly: the
    critic beside the action (`CriticMultiplexer` concatenates the two).
  The embedding is:
  - with images: concat([torso(stacked images), vectors]) (vectors, if any,
    are appended unprocessed; the D4PG heads start with a layer-normed MLP);
  - without images: torso(vectors);
  - with `goal_delta_skip`, concat([that, scaled vector goal differences]).
  With `key_sizes`, a vector key it names keeps only its first n entries
  (after normalization), e.g. {'body': 9}: the joint positions without the
  joint velocities.
  """

  def __init__(self, keys: Sequence[str], torso: types.TensorTransformation,
               goal_conditioned: bool,
               goal_delta_scale: Optional[float] = None,
               normalization: Optional[Normalization] = None,
               goal_delta_skip: bool = False,
               key_sizes: Optional[Mapping[str, int]] = None,
               name: str = 'observation_encoder'):
    """Creates the encoder.

    Args:
      keys: observation keys to use (e.g. ('image',) or ('features',)).
      torso: module applied to the stacked images, or to the concatenated
        vectors if no key is an image.
      goal_conditioned: whether inputs are {'observation': ..., 'goal': ...}.
      goal_delta_scale: if set, vector goals enter as scale * (goal - obs).
      normalization: key -> (offsets, scales) of the vector keys to normalize.
      goal_delta_skip: also append the scaled vector goal differences to the
        embedding (needs `goal_conditioned` and `goal_delta_scale`).
      key_sizes: key -> how many leading entries of that vector key to keep.
      name: module name.
    """
    super().__init__(name=name)
    if not keys:
      raise ValueError('ObservationEncoder needs at least one observation key.')
    if goal_delta_skip and (goal_delta_scale is None or not goal_conditioned):
      raise ValueError('goal_delta_skip needs goal_conditioned inputs and a '
                       'goal_delta_scale.')
    self._goal_delta_skip = goal_delta_skip
    self._keys = tuple(keys)
    self._torso = torso
    self._goal_conditioned = goal_conditioned
    self._goal_delta_scale = goal_delta_scale
    self._normalization = {
        key: tuple(np.asarray(v, np.float32) for v in normalization[key])
        for key in self._keys if normalization and key in normalization}
    unknown = sorted(set(key_sizes or {}) - set(self._keys))
    if unknown:
      raise ValueError(f'key_sizes names keys {unknown} that are not among '
                       f'the observation keys {list(self._keys)}.')
    self._key_sizes = dict(key_sizes or {})

  def _select(self, observation: Mapping[str, tf.Tensor],
              source: str) -> List[tf.Tensor]:
    missing = [key for key in self._keys if key not in observation]
    if missing:
      raise KeyError(f'{source} is missing keys {missing}; it has '
                     f'{sorted(observation)}.')
    selected = []
    for key in self._keys:
      x = self._normalize(key, tf.convert_to_tensor(observation[key]))
      if key in self._key_sizes:
        x = x[..., :self._key_sizes[key]]
      selected.append(x)
    return selected

  def _normalize(self, key: str, x: tf.Tensor) -> tf.Tensor:
    if key not in self._normalization:
      return x
    offset, scale = self._normalization[key]
    return tf.clip_by_value((tf.cast(x, tf.float32) - offset) / scale,
                            -NORMALIZED_CLIP, NORMALIZED_CLIP)

  def __call__(self, inputs: Mapping[str, types.NestedTensor]) -> tf.Tensor:
    """Embeds a batch of (goal-conditioned) observations as [B, D]."""
    deltas = []
    if self._goal_conditioned:
      if OBSERVATION_KEY not in inputs or GOAL_KEY not in inputs:
        raise KeyError(f'Goal-conditioned inputs need keys {OBSERVATION_KEY!r} '
                       f'and {GOAL_KEY!r}; got {sorted(inputs)}.')
      observations = self._select(inputs[OBSERVATION_KEY], OBSERVATION_KEY)
      goals = self._select(inputs[GOAL_KEY], GOAL_KEY)
      if self._goal_delta_scale is not None:
        goals = [g if g.shape.rank == 4 else self._goal_delta_scale * (
            tf.cast(g, tf.float32) - tf.cast(o, tf.float32))
                 for o, g in zip(observations, goals)]
        if self._goal_delta_skip:
          deltas = [_flatten(g) for g in goals if g.shape.rank != 4]
      tensors = observations + goals
    else:
      tensors = self._select(inputs, 'observation')

    images = [_to_float_image(x) for x in tensors if x.shape.rank == 4]
    vectors = [_flatten(x) for x in tensors if x.shape.rank != 4]
    if not images:
      embedding = self._torso(tf.concat(vectors, axis=-1))
    else:
      embedding = tf.concat(
          [self._torso(tf.concat(images, axis=-1))] + vectors, axis=-1)
    return tf.concat([embedding] + deltas, axis=-1) if deltas else embedding


def make_torso(torso: str,
               mlp_torso_sizes: Sequence[int] = (256, 256)) -> snt.Module:
  """Creates a torso by name; one of `TORSOS`."""
  if torso == 'mlp':
    return MLPTorso(mlp_torso_sizes)
  if torso == 'paper_resnet':
    return PaperResNetTorso(instance_norm=True)
  if torso == 'paper_resnet_no_instance_norm':
    return PaperResNetTorso(instance_norm=False)
  if torso == 'impala':
    return ImpalaTorso()
  raise ValueError(f'Unknown torso {torso!r}; valid torsos are {TORSOS}.')


def _check_observation_keys(observations: Dict[str, specs.Array],
                            keys: Sequence[str], goal_conditioned: bool):
  """Raises ValueError if `keys` are not in an (imitation) observation spec."""
  if goal_conditioned and set(observations) == {OBSERVATION_KEY, GOAL_KEY}:
    observations = observations[OBSERVATION_KEY]
  missing = [key for key in keys if key not in observations]
  if missing:
    raise ValueError(f'Observation keys {missing} are not in the observation '
                     f'spec, which has {sorted(observations)}.')


def make_networks(
    environment_spec: Union[specs.EnvironmentSpec, specs.BoundedArray],
    torso: str = 'mlp',
    observation_keys: Sequence[str] = ('features',),
    goal_conditioned: bool = False,
    vmin: float = 0.,
    vmax: float = 100.,
    num_atoms: int = 101,
    policy_layer_sizes: Sequence[int] = (256, 256, 256),
    critic_layer_sizes: Sequence[int] = (512, 512, 256),
    mlp_torso_sizes: Sequence[int] = (256, 256),
    goal_delta_scale: Optional[float] = None,
    normalization: Optional[Normalization] = None,
    goal_delta_skip: bool = False,
    observation_key_sizes: Optional[Mapping[str, int]] = None,
) -> d4pg_agent.D4PGNetworks:
  """Creates MetaMimic's D4PG networks (variables are not created yet).

  policy: LayerNormMLP -> NearZeroInitializedLinear(action_dim) -> TanhToSpec.
  critic: CriticMultiplexer -> LayerNormMLP -> DiscreteValuedHead.
  observation network: `ObservationEncoder(observation_keys, torso)`.

  Call `networks.init(spec)` with the spec the networks are fed from: the task
  environment's spec, or for `goal_conditioned` networks
  `goal_conditioned_spec(task_spec)` (the imitation environment's spec).

  Args:
    environment_spec: an EnvironmentSpec (its observation keys are checked;
      for goal-conditioned networks it may be the task spec or the
      goal-conditioned spec) or just the action spec.
    torso: one of `TORSOS`.
    observation_keys: observation keys the policy and critic see.
    goal_conditioned: whether the networks also see the goal d_{t+1}.
    vmin: smallest value atom of the critic.
    vmax: largest value atom of the critic.
    num_atoms: number of value atoms.
    policy_layer_sizes: hidden layer sizes of the policy MLP.
    critic_layer_sizes: hidden layer sizes of the critic MLP.
    mlp_torso_sizes: layer sizes of the 'mlp' torso.
    goal_delta_scale: see `ObservationEncoder`.
    normalization: see `ObservationEncoder`.
    goal_delta_skip: see `ObservationEncoder`.
    observation_key_sizes: `ObservationEncoder`'s `key_sizes`.

  Returns:
    The D4PG networks.

  Raises:
    ValueError: for an unknown torso or observation keys not in the spec.
  """
  if isinstance(environment_spec, specs.EnvironmentSpec):
    action_spec = environment_spec.actions
    _check_observation_keys(environment_spec.observations, observation_keys,
                            goal_conditioned)
  else:
    action_spec = environment_spec
  num_dimensions = int(np.prod(action_spec.shape, dtype=int))

  observation_network = ObservationEncoder(
      observation_keys, make_torso(torso, mlp_torso_sizes), goal_conditioned,
      goal_delta_scale, normalization, goal_delta_skip,
      observation_key_sizes)
  policy_network = snt.Sequential([
      networks.LayerNormMLP(policy_layer_sizes, activate_final=True),
      networks.NearZeroInitializedLinear(num_dimensions),
      networks.TanhToSpec(action_spec),
  ])
  critic_network = snt.Sequential([
      networks.CriticMultiplexer(),
      networks.LayerNormMLP(critic_layer_sizes, activate_final=True),
      networks.DiscreteValuedHead(vmin, vmax, num_atoms),
  ])
  return d4pg_agent.D4PGNetworks(
      policy_network=policy_network,
      critic_network=critic_network,
      observation_network=observation_network)


class PerDimensionClippedGaussian(networks.ClippedGaussian):
  """Acme's `ClippedGaussian` with one standard deviation per action dimension.

  Acme's module samples noise of the input's whole shape from its Normal,
  which with a vector of scales would add a dimension; here the sample takes
  the scales' shape as its last axis.
  """

  def __init__(self, stddevs: Sequence[float],
               name: str = 'per_dimension_clipped_gaussian'):
    super().__init__(np.asarray(stddevs, np.float32), name=name)

  def __call__(self, inputs: tf.Tensor) -> tf.Tensor:
    noise = self._noise.sample(tf.shape(inputs)[:-1])
    return tf.clip_by_value(inputs + tf.cast(noise, inputs.dtype), -1., 1.)


def make_behavior_policy(d4pg_networks: d4pg_agent.D4PGNetworks,
                         environment_spec: specs.EnvironmentSpec,
                         sigma: Union[float, Sequence[float]]) -> snt.Module:
  """`D4PGNetworks.make_policy` with a scalar or per-dimension `sigma`."""
  if np.ndim(sigma) == 0:
    return d4pg_networks.make_policy(environment_spec, float(sigma))
  if len(sigma) != environment_spec.actions.shape[-1]:
    raise ValueError(f'sigma_per_dimension has {len(sigma)} entries; the '
                     f'action has {environment_spec.actions.shape[-1]}.')
  return snt.Sequential([
      d4pg_networks.observation_network,
      d4pg_networks.policy_network,
      PerDimensionClippedGaussian(sigma),
      networks.ClipToSpec(environment_spec.actions),
  ])
