"""RLDS-shaped demonstration datasets written and read with TensorFlow only.

A dataset is a directory:

    metadata.json                 preset, style, seed, count, shard list, specs
    episodes-00000-of-0000N.tfrecord ...

Each TFRecord record is one episode, a `tf.train.Example` whose features hold
whole-episode tensors (serialized with `tf.io.serialize_tensor`) named after the
RLDS step fields: `steps/observation/<key>`, `steps/action`, `steps/reward`,
`steps/discount`, `steps/is_first`, `steps/is_last`, `steps/is_terminal`,
`steps/physics_state`, plus episode metadata (`episode_id`, `success`). As in
RLDS, step t holds o_t, a_t and the reward and discount that followed a_t; the
last step holds the final observation with a zero action.

Writing is atomic (a temporary directory renamed into place). Loading validates
everything against the environment and raises `DemonstrationError`, naming the
file and the field, before returning anything. Actions are only returned when
`include_actions=True` (the D4PGfD baseline); the imitation path never asks.
"""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

from acme import specs
import numpy as np
import tensorflow as tf

METADATA_FILE = 'metadata.json'
FORMAT_VERSION = 1
_OBSERVATION_PREFIX = 'steps/observation/'
_ACTION = 'steps/action'
_STATE = 'steps/physics_state'
_STEP_FIELDS = {
    'steps/reward': np.float32,
    'steps/discount': np.float32,
    'steps/is_first': np.bool_,
    'steps/is_last': np.bool_,
    'steps/is_terminal': np.bool_,
}


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


def _bytes_feature(array: np.ndarray) -> tf.train.Feature:
  data = tf.io.serialize_tensor(tf.convert_to_tensor(array)).numpy()
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))


def _int_feature(value: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def episode_to_example(episode: Mapping[str, object],
                       episode_id: int) -> tf.train.Example:
  """Packs one recorded episode into an RLDS-shaped `tf.train.Example`.

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
  flags = {name: np.zeros(num_frames, np.bool_)
           for name in ('is_first', 'is_last', 'is_terminal')}
  flags['is_first'][0] = True
  flags['is_last'][-1] = True
  flags['is_terminal'][-1] = bool(discounts[-1] == 0.)
  features = {
      _ACTION: _bytes_feature(pad(actions)),
      'steps/reward': _bytes_feature(pad(rewards)),
      'steps/discount': _bytes_feature(
          np.concatenate([discounts, [1.]]).astype(np.float32)),
      _STATE: _bytes_feature(np.asarray(episode['physics_states'], np.float64)),
      'episode_id': _int_feature(episode_id),
      'success': _int_feature(bool(episode['success'])),
  }
  for name, value in flags.items():
    features['steps/' + name] = _bytes_feature(value)
  for key in observations[0]:
    stacked = np.stack([np.asarray(o[key]) for o in observations])
    features[_OBSERVATION_PREFIX + key] = _bytes_feature(stacked)
  return tf.train.Example(features=tf.train.Features(feature=features))


def write_demonstrations(episodes: Iterable[Mapping[str, object]],
                         path: str,
                         metadata: Mapping[str, object],
                         episodes_per_shard: int = 50,
                         overwrite: bool = False) -> str:
  """Writes episodes to `path` atomically; returns the absolute path.

  Episodes go to a temporary sibling directory that is renamed to `path` only
  after every shard and the metadata are on disk, so an interrupted run leaves
  no partial dataset behind.
  """
  path = os.path.abspath(path)
  if os.path.exists(path) and not overwrite:
    raise FileExistsError(f'{path} exists; pass overwrite=True to replace it.')
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix='.' + os.path.basename(path) + '.tmp-',
                             dir=parent)
  try:
    shard_records: List[List[bytes]] = [[]]
    specs_seen: Dict[str, Dict[str, object]] = {}
    lengths, successes, returns = [], [], []
    for episode_id, episode in enumerate(episodes):
      if len(shard_records[-1]) == episodes_per_shard:
        shard_records.append([])
      shard_records[-1].append(
          episode_to_example(episode, episode_id).SerializeToString())
      lengths.append(len(episode['observations']))
      successes.append(bool(episode['success']))
      returns.append(float(np.sum(episode['rewards'])))
      if not specs_seen:
        specs_seen = {
            k: dict(shape=list(np.shape(v)), dtype=np.asarray(v).dtype.name)
            for k, v in episode['observations'][0].items()}
        specs_seen['physics_state'] = dict(
            shape=[int(np.shape(episode['physics_states'])[1])],
            dtype='float64')
    if not lengths:
      raise ValueError('No episodes to write.')
    shards = []
    for index, records in enumerate(shard_records):
      name = f'episodes-{index:05d}-of-{len(shard_records):05d}.tfrecord'
      with tf.io.TFRecordWriter(os.path.join(staging, name)) as writer:
        for record in records:
          writer.write(record)
      shards.append(dict(file=name, episodes=len(records)))
    full_metadata = dict(metadata)
    full_metadata.update(
        format_version=FORMAT_VERSION, count=len(lengths), shards=shards,
        specs=specs_seen, episode_lengths=lengths,
        success_rate=float(np.mean(successes)),
        mean_return=float(np.mean(returns)))
    with open(os.path.join(staging, METADATA_FILE), 'w') as f:
      json.dump(full_metadata, f, indent=2, sort_keys=True)
    if os.path.exists(path):
      shutil.rmtree(path)
    os.rename(staging, path)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return path


def _fail(where: str, field: str, problem: str):
  raise DemonstrationError(f'{where}: field {field!r}: {problem}')


def read_metadata(path: str) -> Dict[str, object]:
  """Reads and checks `metadata.json` of the dataset at `path`."""
  if not os.path.isdir(path):
    raise DemonstrationError(
        f'{path}: demonstration directory does not exist (make one with '
        'launch/make_demos.py).')
  metadata_path = os.path.join(path, METADATA_FILE)
  if not os.path.isfile(metadata_path):
    raise DemonstrationError(f'{metadata_path}: missing metadata file.')
  try:
    with open(metadata_path, encoding='utf-8') as f:
      metadata = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise DemonstrationError(f'{metadata_path}: not valid JSON ({e}).') from e
  if not isinstance(metadata, dict):
    raise DemonstrationError(f'{metadata_path}: expected a JSON object, got '
                             f'{type(metadata).__name__}.')
  for field in ('preset', 'count', 'shards', 'specs'):
    if field not in metadata:
      _fail(metadata_path, field, 'missing')
  shards = metadata['shards']
  if not isinstance(shards, list) or not all(
      isinstance(s, dict) and isinstance(s.get('file'), str) and
      isinstance(s.get('episodes'), int) and s['episodes'] >= 0
      for s in shards):
    _fail(metadata_path, 'shards',
          'expected a list of {"file": name, "episodes": count}')
  if not isinstance(metadata['count'], int):
    _fail(metadata_path, 'count', f'{metadata["count"]!r} is not an integer')
  if not shards or not metadata['count']:
    _fail(metadata_path, 'count', 'the dataset holds no episodes')
  listed = sum(s['episodes'] for s in shards)
  if listed != metadata['count']:
    _fail(metadata_path, 'count', f'says {metadata["count"]} episodes, the '
          f'shards list {listed}')
  return metadata


def _decode(where: str, field: str, example: tf.train.Example,
            dtype) -> np.ndarray:
  feature = example.features.feature.get(field)
  if feature is None or not feature.bytes_list.value:
    _fail(where, field, 'missing')
  try:
    tensor = tf.io.parse_tensor(feature.bytes_list.value[0],
                                out_type=tf.as_dtype(dtype))
  except tf.errors.InvalidArgumentError as e:
    _fail(where, field, f'expected dtype {np.dtype(dtype).name} ({e.message})')
  value = tensor.numpy()
  if value.dtype.kind == 'f' and not np.all(np.isfinite(value)):
    _fail(where, field, 'holds NaN or inf values')
  return value


def _decode_int(where: str, field: str, example: tf.train.Example) -> int:
  feature = example.features.feature.get(field)
  if feature is None or len(feature.int64_list.value) != 1:
    _fail(where, field, 'missing (expected one int64)')
  return int(feature.int64_list.value[0])


def _check_shape(where: str, field: str, value: np.ndarray,
                 shape: Sequence[int], num_frames: int):
  expected = (num_frames,) + tuple(shape)
  if value.shape != expected:
    _fail(where, field, f'shape {value.shape}, expected {expected}')


def _parse_episode(where: str, record: bytes,
                   environment_spec: specs.EnvironmentSpec, state_size: int,
                   include_actions: bool) -> Demonstration:
  """Decodes and validates one episode record."""
  try:
    example = tf.train.Example.FromString(record)
  except Exception as e:  # protobuf raises its own DecodeError.
    raise DemonstrationError(
        f'{where}: record is not a tf.train.Example ({e}).') from e
  if not example.features.feature:
    # Bytes of another message often parse as an Example with unknown fields.
    raise DemonstrationError(
        f'{where}: record is not a tf.train.Example (it has no features).')
  states = _decode(where, _STATE, example, np.float64)
  num_frames = states.shape[0] if states.ndim == 2 else -1
  if num_frames < 2:
    _fail(where, _STATE, f'shape {states.shape}, expected [T+1 >= 2, '
          f'{state_size}]')
  _check_shape(where, _STATE, states, (state_size,), num_frames)
  observations = {}
  for key, spec in environment_spec.observations.items():
    field = _OBSERVATION_PREFIX + key
    observations[key] = _decode(where, field, example, spec.dtype)
    _check_shape(where, field, observations[key], spec.shape, num_frames)
  step = {}
  for field, dtype in _STEP_FIELDS.items():
    step[field] = _decode(where, field, example, dtype)
    _check_shape(where, field, step[field], (), num_frames)
  # One record is one episode: RLDS marks exactly its first and last step.
  for field, expected_at in (('steps/is_first', 0),
                             ('steps/is_last', num_frames - 1)):
    flagged = np.flatnonzero(step[field]).tolist()
    if flagged != [expected_at]:
      _fail(where, field, f'must be True at step {expected_at} only, is True '
            f'at steps {flagged}')
  flagged = np.flatnonzero(step['steps/is_terminal']).tolist()
  if flagged not in ([], [num_frames - 1]):
    _fail(where, 'steps/is_terminal', f'may be True at the last step '
          f'({num_frames - 1}) only, is True at steps {flagged}')
  actions = None
  if include_actions:
    actions = _decode(where, _ACTION, example, np.float32)
    _check_shape(where, _ACTION, actions, environment_spec.actions.shape,
                 num_frames)
    actions = actions[:-1]
  return Demonstration(
      observations=observations,
      physics_states=states,
      rewards=step['steps/reward'][:-1],
      success=bool(_decode_int(where, 'success', example)),
      episode_id=_decode_int(where, 'episode_id', example),
      actions=actions)


def load_demonstrations(path: str,
                        environment_spec: specs.EnvironmentSpec,
                        preset: str,
                        state_size: int,
                        max_episodes: Optional[int] = None,
                        include_actions: bool = False) -> DemonstrationSet:
  """Loads and validates a dataset written by `write_demonstrations`.

  Args:
    path: the dataset directory.
    environment_spec: the environment the demonstrations must fit; every
      observation key of its spec must be present with the same shape and dtype.
    preset: the environment preset ('features' or 'vision') the caller runs.
    state_size: length of the environment's physics state vector.
    max_episodes: load at most this many episodes (in file order); None loads
      all of them. Must be positive: a set of zero demonstrations is one the
      loader rejects as empty, so asking for one is a caller bug.
    include_actions: also return demonstrator actions (baselines only).

  Raises:
    DemonstrationError: naming the file and field of the first problem found;
      nothing is returned in that case. With `max_episodes`, episodes after
      the first `max_episodes` are not read, so they are not validated.
    ValueError: if `max_episodes` is not positive.
  """
  if max_episodes is not None and max_episodes < 1:
    raise ValueError(f'max_episodes={max_episodes}: give a positive count, or '
                     'None to load every episode.')
  path = os.path.abspath(path)
  metadata = read_metadata(path)
  metadata_path = os.path.join(path, METADATA_FILE)
  if metadata['preset'] != preset:
    _fail(metadata_path, 'preset', f'dataset was recorded with preset '
          f'{metadata["preset"]!r}, the environment runs {preset!r}')
  shard_paths = [os.path.join(path, s['file']) for s in metadata['shards']]
  # Every shard is checked up front, also those `max_episodes` stops short of.
  for shard_path in shard_paths:
    if not os.path.isfile(shard_path):
      _fail(metadata_path, 'shards', f'{shard_path} is missing')
  episodes = []
  for shard, shard_path in zip(metadata['shards'], shard_paths):
    count = 0
    try:
      for record in tf.data.TFRecordDataset(shard_path).as_numpy_iterator():
        episodes.append(_parse_episode(
            f'{shard_path} (episode {count})', record, environment_spec,
            state_size, include_actions))
        count += 1
        if max_episodes is not None and len(episodes) >= max_episodes:
          return DemonstrationSet(path, metadata, episodes)
    except tf.errors.DataLossError as e:
      raise DemonstrationError(
          f'{shard_path}: truncated or corrupt TFRecord after {count} '
          f'episodes ({e.message}).') from e
    if count != shard['episodes']:
      _fail(metadata_path, 'shards', f'{shard_path} holds {count} episodes, '
            f'metadata says {shard["episodes"]}')
  return DemonstrationSet(path, metadata, episodes)
