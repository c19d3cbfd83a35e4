"""Demonstration sets in RLDS layout, written and read with TensorFlow Datasets.

A demonstration set is a TFDS dataset directory, as
`tfds.builder_from_directory` opens it:

    dataset_info.json, features.json   TFDS: the split, its shards, features
    metadata.json                      ours: preset, style, seed, lengths
    metamimic_demonstrations-train.tfrecord-00000-of-0000N ...

Split `train` holds one example per episode, laid out as RLDS lays episodes out
(`tfds.rlds.rlds_base.build_info`): a nested `steps` dataset whose steps hold
`observation` (a dict of the environment's observations), `action`, `reward`,
`discount`, `is_first`, `is_last`, `is_terminal` and the step metadata
`physics_state` (the exact simulator state, float64), and the episode metadata
`episode_id` and `success`. Step t holds o_t, a_t and the reward and discount
that followed a_t; the last step holds the final observation and a zero action.
`rlds.transformations` apply to `episode['steps']` as to any RLDS set.

Writing goes through TFDS's own writer (`GeneratorBasedBuilder`, examples in
episode order) into a temporary sibling directory that is renamed into place
at the end, so an interrupted run leaves no partial set. Loading opens any such
directory, also one another RLDS producer wrote, checks its features against
the environment and every episode's contents, and raises `DemonstrationError`
naming the file and the field before returning anything. Actions are only
returned when `include_actions=True` (the D4PGfD baseline); the imitation path
never asks.

`tensorflow_datasets` is imported where a set is written or read, not with
this module: every node process imports this module for its types, and only
the nodes that load demonstrations need TFDS (0.3 s more to import).
"""

import dataclasses
import functools
import itertools
import json
import logging
import os
import shutil
import tempfile
import warnings
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from acme import specs
import numpy as np
import tensorflow as tf

METADATA_FILE = 'metadata.json'
FEATURES_FILE = 'features.json'
INFO_FILE = 'dataset_info.json'
FORMAT_VERSION = 2
SPLIT = 'train'
BUILDER_NAME = 'metamimic_demonstrations'
_TFDS_FILES = (INFO_FILE, FEATURES_FILE)
# Step fields every set must have besides observations and physics states.
_STEP_FIELDS = ('reward', 'discount', 'is_first', 'is_last', 'is_terminal')


class _QuietTfds(logging.Filter):
  """Drops TFDS's INFO lines and its warnings about its own internals.

  Opening a set logs about 15 deprecation warnings from TFDS 4.8.3's code, not
  ours (`TensorInfo.dtype` is deprecated, a TensorFlow DType in
  tfds.features), and INFO lines on each set it reads or writes ('Load dataset
  info from ...'), which run_local would print before its calm console starts.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    if f'{os.sep}tensorflow_datasets{os.sep}' not in record.pathname:
      return True
    message = str(record.msg)
    return record.levelno > logging.INFO and not (
        message.startswith('`TensorInfo.dtype` is deprecated') or
        message.startswith('You use TensorFlow DType'))


@functools.lru_cache(maxsize=None)
def _tfds():
  """`tensorflow_datasets`, imported on first use (see the module docstring)."""
  with warnings.catch_warnings():
    # dm_control's composer turns every DeprecationWarning on for the whole
    # process ('always'); TFDS 4.8.3 raises two on import (distutils), which
    # then reached the launcher's terminal after its summary.
    warnings.simplefilter('ignore', DeprecationWarning)
    import tensorflow_datasets  # pylint: disable=g-import-not-at-top
  logging.getLogger('absl').addFilter(_QuietTfds())
  tensorflow_datasets.disable_progress_bar()  # The recorder shows its own.
  return tensorflow_datasets


class DemonstrationError(ValueError):
  """A demonstration dataset is missing, malformed or does not fit the env."""


@dataclasses.dataclass
class Demonstration:
  """One demonstration episode: T+1 frames and T task rewards.

  Attributes:
    observations: dict of arrays shaped [T+1, ...]; index t is the paper's
      d_{t+1} (1-based).
    physics_states: [T+1, S] float64 exact simulator states, one per frame.
    rewards: [T] task rewards the demonstrator received.
    success: whether the demonstrator stacked the brick.
    episode_id: index of the episode in its dataset.
    actions: [T, A] demonstrator actions, only for baselines that may use them.
  """

  observations: Dict[str, np.ndarray]
  physics_states: np.ndarray
  rewards: np.ndarray
  success: bool
  episode_id: int
  actions: Optional[np.ndarray] = None

  def __len__(self) -> int:
    return self.physics_states.shape[0]

  def frame(self, t: int) -> Dict[str, np.ndarray]:
    return {k: v[t] for k, v in self.observations.items()}

  def prefix(self, num_steps: int) -> 'Demonstration':
    """The demo's first `num_steps` steps (frames 0..num_steps)."""
    return dataclasses.replace(
        self,
        observations={k: v[:num_steps + 1] for k, v in self.observations.items()},
        physics_states=self.physics_states[:num_steps + 1],
        rewards=self.rewards[:num_steps],
        actions=None if self.actions is None else self.actions[:num_steps])


@dataclasses.dataclass
class DemonstrationSet:
  """A validated, in-memory set of demonstrations plus its metadata."""

  path: str
  metadata: Dict[str, object]
  episodes: List[Demonstration]

  def __len__(self) -> int:
    return len(self.episodes)

  def __getitem__(self, index: int) -> Demonstration:
    return self.episodes[index]

  @property
  def mean_return(self) -> float:
    return float(np.mean([e.rewards.sum() for e in self.episodes]))

  @property
  def success_rate(self) -> float:
    return float(np.mean([e.success for e in self.episodes]))


def episode_to_rlds(episode: Mapping[str, object],
                     episode_id: int) -> Dict[str, object]:
  """One recorded episode as an RLDS episode (steps stacked along axis 0).

  Args:
    episode: with `observations` (list of T+1 dicts), `actions` ([T, A]),
      `rewards` ([T]), `discounts` ([T]), `physics_states` ([T+1, S]) and
      `success`.
    episode_id: index stored with the episode.
  """
  observations = episode['observations']
  num_frames = len(observations)
  actions = np.asarray(episode['actions'], np.float32)
  rewards = np.asarray(episode['rewards'], np.float32)
  discounts = np.asarray(episode['discounts'], np.float32)
  if actions.shape[0] != num_frames - 1 or rewards.shape[0] != num_frames - 1:
    raise ValueError(f'Episode {episode_id}: {num_frames} frames need '
                     f'{num_frames - 1} actions and rewards, got '
                     f'{actions.shape[0]} and {rewards.shape[0]}.')
  # RLDS: the last step carries the final observation and no real action.
  pad = lambda x: np.concatenate([x, np.zeros_like(x[:1])])
  steps = {
      'observation': {key: np.stack([np.asarray(o[key]) for o in observations])
                      for key in observations[0]},
      'action': pad(actions),
      'reward': pad(rewards),
      'discount': np.concatenate([discounts, [1.]]).astype(np.float32),
      'physics_state': np.asarray(episode['physics_states'], np.float64),
  }
  for name in ('is_first', 'is_last', 'is_terminal'):
    steps[name] = np.zeros(num_frames, np.bool_)
  steps['is_first'][0] = True
  steps['is_last'][-1] = True
  steps['is_terminal'][-1] = bool(discounts[-1] == 0.)
  return dict(steps=steps, episode_id=episode_id,
              success=bool(episode['success']))


def rlds_features(first: Mapping[str, object]):
  """The TFDS features of RLDS episodes shaped like `first` (an RLDS episode).

  The layout `tfds.rlds.rlds_base.build_info` gives, with `physics_state` as
  step metadata and `episode_id`, `success` as episode metadata.
  """
  tfds = _tfds()
  steps = first['steps']
  tensor = lambda x: tfds.features.Tensor(shape=np.shape(x)[1:],
                                          dtype=np.asarray(x).dtype)
  return tfds.features.FeaturesDict({
      'steps': tfds.features.Dataset({
          'observation': tfds.features.FeaturesDict(
              {k: tensor(v) for k, v in steps['observation'].items()}),
          'action': tensor(steps['action']),
          'reward': tfds.features.Scalar(dtype=np.float32),
          'discount': tfds.features.Scalar(dtype=np.float32),
          'is_first': np.bool_,
          'is_last': np.bool_,
          'is_terminal': np.bool_,
          # As raw bytes: TFDS stores other floats as float32 lists, which
          # would round the states (measured: errors up to 1.2e-7).
          'physics_state': tfds.features.Tensor(
              shape=np.shape(steps['physics_state'])[1:], dtype=np.float64,
              encoding=tfds.features.Encoding.BYTES),
      }),
      'episode_id': np.int64,
      'success': np.bool_,
  })


@functools.lru_cache(maxsize=None)
def _builder_class():
  """`GeneratorBasedBuilder` writing the RLDS episodes it is given, in order.

  Made on first use (TFDS is imported lazily) and kept out of TFDS's registry:
  it writes sets, `tfds.builder_from_directory` reads them without it.
  """
  tfds = _tfds()

  class MetamimicDemonstrations(tfds.core.GeneratorBasedBuilder,
                                skip_registration=True):
    """Demonstrations of the MetaMimic Jaco tasks (RLDS episodes)."""

    VERSION = tfds.core.Version('1.0.0')
    name = BUILDER_NAME

    def __init__(self, episodes: Iterator[Dict[str, object]], features,
                 metadata: Dict[str, object], **kwargs):
      self._episodes = episodes
      self._features = features
      # Filled while the episodes stream past; TFDS writes it after them.
      self._metadata = tfds.core.MetadataDict(metadata)
      super().__init__(**kwargs)

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self,
          description='Scripted demonstrations (observations, actions, '
          'physics states) recorded by acme_metamimic.',
          features=self._features,
          # Keep episode order: `max_episodes` means the first N.
          disable_shuffling=True,
          metadata=self._metadata)

    # TFDS prints both to stdout, naming the staging directory that is
    # renamed a moment later; the recorder logs where the set went.
    def _log_download_bytes(self):
      pass

    def _log_download_done(self):
      pass

    def _split_generators(self, dl_manager):
      del dl_manager
      return {SPLIT: self._generate_examples()}

    def _generate_examples(self):
      lengths, successes, returns = [], [], []
      for episode in self._episodes:
        lengths.append(int(len(episode['steps']['is_first'])))
        successes.append(bool(episode['success']))
        returns.append(float(np.sum(episode['steps']['reward'])))
        yield episode['episode_id'], episode
      self._metadata.update(
          count=len(lengths), episode_lengths=lengths,
          success_rate=float(np.mean(successes)),
          mean_return=float(np.mean(returns)))

  return MetamimicDemonstrations


def write_demonstrations(episodes: Iterable[Mapping[str, object]],
                         path: str,
                         metadata: Mapping[str, object],
                         num_shards: Optional[int] = None,
                         overwrite: bool = False) -> str:
  """Writes episodes to `path` with TFDS's writer, atomically; returns `path`.

  Args:
    episodes: recorded episodes (see `episode_to_rlds`); consumed once.
    path: the set's directory; it must not exist unless `overwrite`.
    metadata: stored in `metadata.json` (e.g. preset, style, seed), with the
      episode count, lengths, success rate and mean return added.
    num_shards: TFRecord files to split the episodes into; None lets TFDS
      choose by size (one file below 64 MiB).
    overwrite: replace an existing set at `path`.
  """
  tfds = _tfds()
  path = os.path.abspath(path)
  if os.path.exists(path) and not overwrite:
    raise FileExistsError(f'{path} exists; pass overwrite=True to replace it.')
  rlds_episodes = (episode_to_rlds(e, i) for i, e in enumerate(episodes))
  first = next(rlds_episodes, None)
  if first is None:
    raise ValueError('No episodes to write.')
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix='.' + os.path.basename(path) + '.tmp-',
                             dir=parent)
  try:
    builder = _builder_class()(
        episodes=itertools.chain([first], rlds_episodes),
        features=rlds_features(first),
        metadata=dict(metadata, format_version=FORMAT_VERSION),
        data_dir=staging)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        try_download_gcs=False, num_shards=num_shards))
    if os.path.exists(path):
      shutil.rmtree(path)
    os.rename(builder.data_dir, path)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return path


def _fail(where: str, field: str, problem: str):
  raise DemonstrationError(f'{where}: field {field!r}: {problem}')


def _read_json(path: str) -> Dict[str, object]:
  try:
    with open(path, encoding='utf-8') as f:
      content = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise DemonstrationError(f'{path}: not valid JSON ({e}).') from e
  if not isinstance(content, dict):
    raise DemonstrationError(f'{path}: expected a JSON object, got '
                             f'{type(content).__name__}.')
  return content


def _check_directory(path: str):
  """Raises unless `path` holds a TFDS dataset (naming the missing file)."""
  if not os.path.isdir(path):
    raise DemonstrationError(
        f'{path}: demonstration directory does not exist (make one with '
        'launch/make_demos.py).')
  for name in _TFDS_FILES:
    if not os.path.isfile(os.path.join(path, name)):
      if any(f.startswith('episodes-') and f.endswith('.tfrecord')
             for f in os.listdir(path)):
        hint = ('it holds a set in the format of acme_metamimic before '
                'TFDS (episodes-*.tfrecord); record it again with '
                'launch/make_demos.py, or delete it and run_local records it')
      else:
        hint = 'not a TFDS dataset directory'
      raise DemonstrationError(f'{os.path.join(path, name)}: missing ({hint}).')
    _read_json(os.path.join(path, name))


def read_metadata(path: str) -> Dict[str, object]:
  """Our `metadata.json` of the set at `path`; {} for a set without one.

  Sets another RLDS producer wrote have no such file; their features and
  contents are checked all the same.
  """
  _check_directory(path)
  metadata_path = os.path.join(path, METADATA_FILE)
  if not os.path.exists(metadata_path):
    return {}
  return _read_json(metadata_path)


def _feature_spec(feature) -> Optional[Tuple[Tuple[int, ...], np.dtype]]:
  """(shape, dtype) of a TFDS tensor feature, None for a nested one."""
  shape, dtype = getattr(feature, 'shape', None), getattr(feature,
                                                          'np_dtype', None)
  if not isinstance(shape, tuple) or dtype is None:
    return None
  return shape, np.dtype(dtype)


def _check_features(path: str, features,
                    environment_spec: specs.EnvironmentSpec, state_size: int,
                    include_actions: bool):
  """Checks `features.json` against the environment, before any record."""
  tfds = _tfds()
  where = os.path.join(path, FEATURES_FILE)

  def check(container, name, field, shape=None, dtypes=None):
    if name not in container.keys():
      _fail(where, field, 'missing')
    spec = _feature_spec(container[name])
    if spec is None:
      _fail(where, field, f'is {type(container[name]).__name__}, expected a '
            'tensor')
    if shape is not None and spec[0] != tuple(shape):
      _fail(where, field, f'shape {spec[0]}, expected {tuple(shape)}')
    if dtypes is not None and spec[1] not in [np.dtype(d) for d in dtypes]:
      _fail(where, field, f'dtype {spec[1].name}, expected '
            f'{" or ".join(np.dtype(d).name for d in dtypes)}')

  if 'steps' not in features.keys() or not isinstance(
      features['steps'], tfds.features.Dataset):
    _fail(where, 'steps', 'missing (an RLDS episode has a nested steps '
          'dataset)')
  steps = features['steps'].feature
  if 'observation' not in steps.keys() or not isinstance(
      steps['observation'], tfds.features.FeaturesDict):
    _fail(where, 'steps/observation', 'missing (expected a dict of the '
          'environment\'s observations)')
  for key, spec in environment_spec.observations.items():
    check(steps['observation'], key, f'steps/observation/{key}', spec.shape,
          [spec.dtype])
  floats = (np.float32, np.float64)
  check(steps, 'reward', 'steps/reward', (), floats)
  check(steps, 'discount', 'steps/discount', (), floats)
  for name in ('is_first', 'is_last', 'is_terminal'):
    check(steps, name, f'steps/{name}', (), [np.bool_])
  # The simulator state must be exact: float32 would not replay the demo.
  check(steps, 'physics_state', 'steps/physics_state', (state_size,),
        [np.float64])
  # Encoded as bytes, the serialized feature is a string; a float list is not.
  stored = steps['physics_state'].get_serialized_info().np_dtype
  if np.dtype(stored).kind not in 'OS':
    _fail(where, 'steps/physics_state', 'float64 written without an encoding, '
          'which TFDS stores as float32 (the demo would not replay exactly); '
          'write it with encoding=tfds.features.Encoding.BYTES')
  if include_actions:
    check(steps, 'action', 'steps/action', environment_spec.actions.shape,
          floats)
  check(features, 'episode_id', 'episode_id', (),
        [np.int64, np.int32])
  check(features, 'success', 'success', (), [np.bool_])


def _check_episode(where: str, episode: Dict[str, object],
                   environment_spec: specs.EnvironmentSpec,
                   include_actions: bool) -> 'Demonstration':
  """Validates one decoded RLDS episode (steps batched) and converts it."""
  steps = episode['steps']
  num_frames = len(steps['is_first'])
  if num_frames < 2:
    _fail(where, 'steps', f'{num_frames} steps, expected at least 2 (a '
          'first observation and a last)')
  arrays = {f'steps/observation/{key}': steps['observation'][key]
            for key in environment_spec.observations}
  arrays['steps/physics_state'] = steps['physics_state']
  arrays.update({f'steps/{name}': steps[name] for name in _STEP_FIELDS})
  if include_actions:
    arrays['steps/action'] = steps['action']
  for field, value in arrays.items():
    if value.dtype.kind == 'f' and not np.all(np.isfinite(value)):
      _fail(where, field, 'holds NaN or inf values')
  # One example is one episode: RLDS marks exactly its first and last step.
  for name, expected_at in (('is_first', 0), ('is_last', num_frames - 1)):
    flagged = np.flatnonzero(steps[name]).tolist()
    if flagged != [expected_at]:
      _fail(where, f'steps/{name}', f'must be True at step {expected_at} '
            f'only, is True at steps {flagged}')
  flagged = np.flatnonzero(steps['is_terminal']).tolist()
  if flagged not in ([], [num_frames - 1]):
    _fail(where, 'steps/is_terminal', f'may be True at the last step '
          f'({num_frames - 1}) only, is True at steps {flagged}')
  # Copies: arrays read with np.frombuffer are read-only, and MuJoCo's
  # mj_setState takes only writeable ones.
  return Demonstration(
      observations={key: np.array(steps['observation'][key])
                    for key in environment_spec.observations},
      physics_states=np.array(steps['physics_state']),
      rewards=steps['reward'][:-1].astype(np.float32),
      success=bool(episode['success']),
      episode_id=int(episode['episode_id']),
      actions=(steps['action'][:-1].astype(np.float32) if include_actions
               else None))


def load_demonstrations(path: str,
                        environment_spec: specs.EnvironmentSpec,
                        preset: str,
                        state_size: int,
                        max_episodes: Optional[int] = None,
                        include_actions: bool = False) -> DemonstrationSet:
  """Loads and validates an RLDS demonstration set in TFDS format.

  Args:
    path: the set's directory (what `tfds.builder_from_directory` opens).
    environment_spec: the environment the demonstrations must fit; every
      observation key of its spec must be present with the same shape and dtype.
    preset: the environment preset ('features' or 'vision') the caller runs;
      checked against `metadata.json` where the set has one.
    state_size: length of the environment's physics state vector.
    max_episodes: load at most this many episodes (in file order); None loads
      all of them. Must be positive: a set of zero demonstrations is one the
      loader rejects as empty, so asking for one is a caller bug.
    include_actions: also return demonstrator actions (baselines only).

  Raises:
    DemonstrationError: naming the file and field of the first problem found;
      nothing is returned in that case. With `max_episodes`, episodes after
      the first `max_episodes` are not read, so they are not validated (every
      shard file must exist all the same).
    ValueError: if `max_episodes` is not positive.
  """
  if max_episodes is not None and max_episodes < 1:
    raise ValueError(f'max_episodes={max_episodes}: give a positive count, or '
                     'None to load every episode.')
  tfds = _tfds()
  path = os.path.abspath(path)
  metadata = read_metadata(path)
  if 'preset' in metadata and metadata['preset'] != preset:
    _fail(os.path.join(path, METADATA_FILE), 'preset', f'dataset was '
          f'recorded with preset {metadata["preset"]!r}, the environment runs '
          f'{preset!r}')
  try:
    builder = tfds.builder_from_directory(path)
  except Exception as e:  # TFDS raises many kinds for a malformed directory.
    raise DemonstrationError(f'{path}: TFDS cannot open it as a dataset '
                             f'({type(e).__name__}: {e}).') from e
  _check_features(path, builder.info.features, environment_spec, state_size,
                  include_actions)
  info_path = os.path.join(path, INFO_FILE)
  if SPLIT not in builder.info.splits:
    _fail(info_path, 'splits', f'no {SPLIT!r} split (it has '
          f'{sorted(builder.info.splits.keys())})')
  split = builder.info.splits[SPLIT]
  if not split.num_examples:
    _fail(info_path, 'splits', f'the {SPLIT!r} split holds no episodes')
  shards = [str(p) for p in split.filepaths]
  # Every shard is checked up front, also those `max_episodes` stops short of.
  for shard in shards:
    if not os.path.isfile(shard):
      _fail(info_path, 'splits', f'{shard} is missing')
  features = builder.info.features
  example_spec = features.tf_example_spec

  def feature_at(path: str):
    """The TFDS feature of a flat example key, e.g. 'steps/observation/x'."""
    feature = features
    for name in path.split('/'):
      if isinstance(feature, tfds.features.Dataset):
        feature = feature.feature
      feature = feature[name]
    return feature

  feature_of = {path: feature_at(path) for path in example_spec}

  def decode(record: bytes) -> Dict[str, object]:
    """One record as nested numpy arrays, steps stacked along axis 0.

    Parsed with TFDS's example spec and `tf.io.parse_single_example`, then
    cast to the features' dtypes (TFDS stores bools and ints as int64), eagerly
    and without the nested steps dataset TFDS's own decoding makes: in a
    tf.data map or a tf.function, TF 2.8 fails on that ("can't delete node(s)
    with retained fanouts", or, under absl's app.run, a missing FunctionDef of
    its decoding loop). Tensors stored as raw bytes (our physics states) are
    read with `np.frombuffer`; other encodings go through TFDS. 20 features
    demos: 0.1 s to parse (TFDS's decoding, step by step: 6 s).
    """
    flat = tf.io.parse_single_example(record, example_spec)
    episode = {}
    for path, value in flat.items():
      feature, value = feature_of[path], value.numpy()
      if value.dtype == object:  # An encoded tensor, one string per step.
        size = int(np.prod(feature.shape)) * feature.np_dtype.itemsize
        if all(len(v) == size for v in value):
          value = np.frombuffer(b''.join(value), feature.np_dtype).reshape(
              (len(value),) + feature.shape)
        else:
          value = feature.decode_batch_example(tf.constant(value)).numpy()
      node, names = episode, path.split('/')
      for name in names[:-1]:
        node = node.setdefault(name, {})
      node[names[-1]] = value.astype(feature.np_dtype, copy=False)
    return episode

  # Each shard read on its own, so that an error names its file and each
  # file's count is checked.
  episodes = []
  for shard, listed in zip(shards, split.shard_lengths):
    count = 0
    records = tf.data.TFRecordDataset(shard).as_numpy_iterator()
    while max_episodes is None or len(episodes) < max_episodes:
      where = f'{shard} (episode {count})'
      try:
        record = next(records)
      except StopIteration:
        break
      except tf.errors.DataLossError as e:
        raise DemonstrationError(
            f'{shard}: truncated or corrupt TFRecord after {count} episodes '
            f'({e.message}).') from e
      try:
        episode = decode(record)
      except tf.errors.InvalidArgumentError as e:
        raise DemonstrationError(
            f'{where}: record does not parse as an example of '
            f'{FEATURES_FILE} ({e.message.splitlines()[0]}).') from e
      episodes.append(_check_episode(where, episode, environment_spec,
                                     include_actions))
      count += 1
    if max_episodes is not None and len(episodes) >= max_episodes:
      break
    if count != listed:
      _fail(info_path, 'splits', f'{shard} holds {count} episodes, '
            f'{INFO_FILE} says {listed}')
  return DemonstrationSet(path, metadata, episodes)
