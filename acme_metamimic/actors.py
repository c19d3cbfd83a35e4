"""A feed-forward actor whose MLP policy runs in numpy.

On the features preset an actor step is an environment step (about 1 ms), the
adder's write and the policy call. Acme's `FeedForwardActor` calls its policy
as a `tf.function` on a batch of one, which costs more than the MLP's
arithmetic (docs/benchmarks.md). `NumpyPolicy` evaluates the same Sonnet
modules (`networks.ObservationEncoder` with the MLP torso, Acme's
`LayerNormMLP`, `TanhToSpec`, `ClippedGaussian`, `ClipToSpec`) with numpy on
copies of their variables, refreshed whenever the variable client brings new
ones. Networks it cannot evaluate (image torsos) raise `NotImplementedError`
when it is built, and `builder.MetaMimicBuilder.make_actor` then uses Acme's
actor.

With a `clone_weight` the actor also passes its adder the policy's
noise-free action and that weight as extras (`adders.greedy_extras`), which
the task learner clones under
`MetaMimicConfig.task_behaviour_cloning_labels='greedy'`.
"""

from typing import Callable, List, Optional

from acme import adders
from acme import core
from acme import types
from acme.tf import networks as acme_networks
from acme.tf import variable_utils
from acme_metamimic import adders as metamimic_adders
from acme_metamimic import networks
import dm_env
import numpy as np
import sonnet as snt
import tensorflow as tf
import tree

Layer = Callable[[np.ndarray], np.ndarray]


def _elu(x: np.ndarray) -> np.ndarray:
  return np.where(x > 0, x, np.expm1(np.minimum(x, 0.)))


_ACTIVATIONS = {tf.nn.elu: _elu, tf.nn.tanh: np.tanh, tf.tanh: np.tanh,
                tf.nn.relu: lambda x: np.maximum(x, 0.)}


class NumpyPolicy:
  """`make_policy`'s Sonnet stack evaluated in numpy on one observation."""

  def __init__(self, policy_network: snt.Module,
               seed: Optional[int] = None):
    """Compiles `policy_network` (its variables must exist) into numpy steps.

    Args:
      policy_network: the actor's policy, e.g. `D4PGNetworks.make_policy`.
      seed: seeds the exploration noise (`ClippedGaussian`); by default the
        seed is drawn from TensorFlow's global generator, so that
        `tf.random.set_seed` makes the noise repeatable, as it does for
        Acme's TF actor.

    Raises:
      NotImplementedError: for a module this class cannot evaluate.
    """
    if seed is None:
      seed = int(tf.random.uniform((), maxval=2**31 - 1, dtype=tf.int64))
    self._rng = np.random.default_rng(seed)
    self._weights: List[np.ndarray] = []
    self._variables: List[tf.Variable] = []
    self._encoder: Optional[Callable[[types.NestedArray], np.ndarray]] = None
    # The last call's action before the exploration noise (`ClippedGaussian`),
    # None for a policy without noise or before the first call.
    self.noise_free: Optional[np.ndarray] = None
    self._layers = self._compile(policy_network)
    self.refresh()

  def refresh(self):
    """Copies the current variable values (after a variable client update)."""
    for i, variable in enumerate(self._variables):
      self._weights[i] = variable.numpy()

  def __call__(self, observation: types.NestedArray) -> np.ndarray:
    x = observation
    for layer in self._layers:
      x = layer(x)
    return x

  def _weight(self, variable: tf.Variable) -> Callable[[], np.ndarray]:
    self._variables.append(variable)
    self._weights.append(variable.numpy())
    index = len(self._weights) - 1
    return lambda: self._weights[index]

  def _compile(self, module) -> List[Layer]:
    """The numpy steps of `module`, in order."""
    if module in _ACTIVATIONS:
      return [_ACTIVATIONS[module]]
    if isinstance(module, snt.Sequential):
      return [layer for child in module._layers  # pylint: disable=protected-access
              for layer in self._compile(child)]
    if isinstance(module, acme_networks.LayerNormMLP):
      return self._compile(module._network)  # pylint: disable=protected-access
    if isinstance(module, networks.MLPTorso):
      return [_float_vector] + self._compile(module._mlp)  # pylint: disable=protected-access
    if isinstance(module, snt.nets.MLP):
      layers = []
      for i, linear in enumerate(module._layers):  # pylint: disable=protected-access
        layers += self._compile(linear)
        if i < len(module._layers) - 1 or module._activate_final:  # pylint: disable=protected-access
          layers += self._compile(module._activation)  # pylint: disable=protected-access
      return layers
    if isinstance(module, snt.Linear):
      w, b = self._weight(module.w), self._weight(module.b)
      return [lambda x: x @ w() + b()]
    if isinstance(module, snt.LayerNorm):
      return [self._layer_norm(module)]
    if isinstance(module, networks.ObservationEncoder):
      return [self._observation_encoder(module)]
    if isinstance(module, acme_networks.TanhToSpec):
      scale = np.float32(module._scale)  # pylint: disable=protected-access
      offset = np.float32(module._offset)  # pylint: disable=protected-access
      return [lambda x: 0.5 * (np.tanh(x) + 1.) * scale + offset]
    if isinstance(module, acme_networks.ClippedGaussian):
      # A scalar, or one per action dimension (PerDimensionClippedGaussian).
      stddev = np.asarray(module._noise.stddev())  # pylint: disable=protected-access

      def clipped_gaussian(x):
        self.noise_free = x
        return np.clip(
            x + self._rng.normal(0., stddev, x.shape).astype(x.dtype), -1., 1.)
      return [clipped_gaussian]
    if isinstance(module, acme_networks.ClipToSpec):
      low, high = module._min, module._max  # pylint: disable=protected-access
      return [lambda x: np.clip(x, low, high).astype(x.dtype)]
    raise NotImplementedError(
        f'NumpyPolicy cannot evaluate {type(module).__name__}.')

  def _layer_norm(self, module: snt.LayerNorm) -> Layer:
    if not (module._create_scale and module._create_offset):  # pylint: disable=protected-access
      raise NotImplementedError('NumpyPolicy needs LayerNorm scale and offset.')
    scale, offset = self._weight(module.scale), self._weight(module.offset)
    eps = module._eps  # pylint: disable=protected-access

    def layer_norm(x):
      mean = x.mean(axis=-1, keepdims=True)
      variance = np.square(x - mean).mean(axis=-1, keepdims=True)
      return (x - mean) / np.sqrt(variance + eps) * scale() + offset()
    return layer_norm

  def _observation_encoder(self, module: networks.ObservationEncoder) -> Layer:
    # pylint: disable=protected-access
    keys, scale = module._keys, module._goal_delta_scale
    goal_conditioned, skip = module._goal_conditioned, module._goal_delta_skip
    normalization, key_sizes = module._normalization, module._key_sizes
    torso = self._compile(module._torso)
    # pylint: enable=protected-access

    def select(observation):
      vectors = []
      for key in keys:
        x = np.asarray(observation[key])
        if key in normalization:
          offset, scales = normalization[key]
          x = np.clip((x.astype(np.float32) - offset) / scales,
                      -networks.NORMALIZED_CLIP, networks.NORMALIZED_CLIP)
        if key in key_sizes:
          x = x[..., :key_sizes[key]]
        vectors.append(x)
      return vectors

    def flat(vectors):
      return np.concatenate([v.astype(np.float32).reshape(1, -1)
                             for v in vectors], axis=-1)

    def encode(observation):
      goals = []
      if goal_conditioned:
        observations = select(observation[networks.OBSERVATION_KEY])
        goals = select(observation[networks.GOAL_KEY])
        if scale is not None:
          goals = [scale * (g.astype(np.float32) - o.astype(np.float32))
                   for o, g in zip(observations, goals)]
        vectors = observations + goals
      else:
        vectors = select(observation)
      if any(v.ndim >= 3 for v in vectors):
        raise NotImplementedError('NumpyPolicy evaluates vector observations '
                                  'only.')
      x = flat(vectors)
      for layer in torso:
        x = layer(x)
      return np.concatenate([x, flat(goals)], axis=-1) if skip else x
    return encode


def _float_vector(x: np.ndarray) -> np.ndarray:
  return x.astype(np.float32)


class _NotifyingVariableClient(variable_utils.VariableClient):
  """Acme's variable client, counting the copies of new parameters."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.copies = 0

  def _copy(self, new_variables):
    super()._copy(new_variables)
    self.copies += 1


class _AddingActor(core.Actor):
  """Passes observed steps to `self._adder`, if any (as Acme's actors do).

  With `self._clone_weight` set, each step's extras are the noise-free action
  of the last `select_action` (`self._noise_free`) and that weight.
  """

  _adder: Optional[adders.Adder] = None
  _clone_weight: Optional[float] = None
  _noise_free: Optional[np.ndarray] = None

  def observe_first(self, timestep: dm_env.TimeStep):
    if self._adder:
      self._adder.add_first(timestep)

  def observe(self, action: types.NestedArray, next_timestep: dm_env.TimeStep):
    if not self._adder:
      return
    if self._clone_weight is None:
      self._adder.add(action, next_timestep)
      return
    if self._noise_free is None:
      raise ValueError('This actor stores greedy actions (clone_weight='
                       f'{self._clone_weight}) but its policy has no '
                       'exploration noise to take off.')
    extras = metamimic_adders.greedy_extras(self._noise_free,
                                            self._clone_weight)
    self._adder.add(action, next_timestep, extras=extras)


class NumpyFeedForwardActor(_AddingActor):
  """Acme's `FeedForwardActor` with the policy evaluated by `NumpyPolicy`."""

  def __init__(self,
               policy_network: snt.Module,
               adder: Optional[adders.Adder] = None,
               variable_source: Optional[core.VariableSource] = None,
               update_period: int = 1000,
               seed: Optional[int] = None,
               clone_weight: Optional[float] = None):
    """Creates the actor.

    Args:
      policy_network: the policy; its variables must exist.
      adder: where observed steps go.
      variable_source: the learner to pull parameters from.
      update_period: steps between parameter pulls.
      seed: seeds the exploration noise.
      clone_weight: if given, steps go to the adder with the noise-free
        action and this weight as extras (module docstring).
    """
    self._policy = NumpyPolicy(policy_network, seed)
    self._adder = adder
    self._clone_weight = clone_weight
    self._client = None
    self._copies = 0
    if variable_source is not None:
      self._client = _NotifyingVariableClient(
          client=variable_source,
          variables={'policy': policy_network.variables},
          update_period=update_period)
      # Never act with random parameters after a restart.
      self._client.update_and_wait()
      self._refresh()

  def _refresh(self):
    if self._client is not None and self._client.copies != self._copies:
      self._copies = self._client.copies
      self._policy.refresh()

  def select_action(self, observation: types.NestedArray) -> np.ndarray:
    action = self._policy(tree.map_structure(lambda x: x[None], observation))
    if self._policy.noise_free is not None:
      self._noise_free = self._policy.noise_free[0]
    return action[0]

  def update(self, wait: bool = False):
    if self._client is None:
      # No variable source: the policy's variables are the learner's own
      # (single-process agent), so re-read them.
      self._policy.refresh()
      return
    self._client.update(wait)
    self._refresh()


class FunctionActor(_AddingActor):
  """An actor acting with a plain function of the observation, plus noise.

  The noise is the learned actors' (`ClippedGaussian`: Gaussian with `sigma`,
  a scalar or one per action dimension, clipped to [-1, 1]); steps go to the
  adder as a learned actor's do. Only the tracker-fed ablation uses it
  (`agent_distributed.IMITATION_POLICIES`): a hand-written policy standing
  in for the imitation policy, never a learned policy's part.
  """

  def __init__(self, policy: Callable[[types.NestedArray], np.ndarray],
               adder: Optional[adders.Adder] = None, sigma=0.,
               seed: Optional[int] = None,
               clone_weight: Optional[float] = None):
    if seed is None:  # TensorFlow's global generator, as `NumpyPolicy`.
      seed = int(tf.random.uniform((), maxval=2**31 - 1, dtype=tf.int64))
    self._policy = policy
    self._adder = adder
    self._clone_weight = clone_weight
    self._sigma = np.asarray(sigma, np.float32)
    self._rng = np.random.default_rng(seed)

  def select_action(self, observation: types.NestedArray) -> np.ndarray:
    action = np.asarray(self._policy(observation), np.float32)
    self._noise_free = np.clip(action, -1., 1.)
    noise = self._rng.normal(0., 1., action.shape) * self._sigma
    return np.clip(action + noise, -1., 1.).astype(np.float32)

  def update(self, wait: bool = False):
    pass  # No parameters.
