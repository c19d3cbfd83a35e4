"""Tests for the TFDS/RLDS demonstration writer and the validating loader."""

import json
import os
import pathlib

from acme import specs
import numpy as np
import pytest
import rlds
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.rlds import rlds_base

from acme_metamimic.demonstrations import dataset

STATE_SIZE = 7
SPEC = specs.EnvironmentSpec(
    observations={
        'body': specs.Array((4,), np.float32, name='body'),
        'image': specs.Array((8, 8, 3), np.uint8, name='image'),
    },
    actions=specs.BoundedArray((2,), np.float32, -1., 1., name='action'),
    rewards=specs.Array((), np.float64, name='reward'),
    discounts=specs.BoundedArray((), np.float64, 0., 1., name='discount'))


def _episode(rng, length=6):
  return dict(
      observations=[dict(
          body=rng.normal(size=4).astype(np.float32),
          image=rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
                    for _ in range(length + 1)],
      actions=rng.uniform(-1, 1, (length, 2)).astype(np.float32),
      rewards=rng.uniform(0, 1, length),
      discounts=np.ones(length),
      physics_states=rng.normal(size=(length + 1, STATE_SIZE)),
      success=True)


def _write(path, episodes, preset='vision', **kwargs):
  return dataset.write_demonstrations(
      episodes, str(path), dict(preset=preset, style='A', seed=0), **kwargs)


def _load(path, **kwargs):
  kwargs.setdefault('preset', 'vision')
  return dataset.load_demonstrations(str(path), SPEC, state_size=STATE_SIZE,
                                     **kwargs)


def _shards(path):
  return sorted(path.glob(f'{dataset.BUILDER_NAME}-train.tfrecord-*'))


class _OtherProducer(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Another RLDS producer: TFDS's RLDS layout, none of our writer's code."""

  VERSION = tfds.core.Version('2.0.0')
  name = 'other_producer'

  def __init__(self, episodes, config, **kwargs):
    self._episodes = episodes
    self._config = config
    super().__init__(**kwargs)

  def _info(self):
    return rlds_base.build_info(self._config, self)

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    for i, episode in enumerate(self._episodes):
      yield i, episode


def _write_with_tfds(path, episodes, drop=(), dtypes=None,
                     encoding=tfds.features.Encoding.BYTES):
  """Writes RLDS `episodes` (see `dataset.episode_to_rlds`) with TFDS alone.

  `drop` leaves out step or episode fields ('action', 'success', ...),
  `dtypes` changes the feature dtype of 'reward' or 'physics_state' and
  `encoding` is that of 'physics_state'.
  """
  dtypes = dict(dict(reward=tf.float64, physics_state=tf.float64),
                **(dtypes or {}))
  config = rlds_base.DatasetConfig(
      name='demos',
      observation_info=tfds.features.FeaturesDict({
          'body': tfds.features.Tensor(shape=(4,), dtype=tf.float32),
          'image': tfds.features.Tensor(shape=(8, 8, 3), dtype=tf.uint8)}),
      action_info=tfds.features.Tensor(shape=(2,), dtype=tf.float32),
      reward_info=tfds.features.Scalar(dtype=dtypes['reward']),
      discount_info=tfds.features.Scalar(dtype=tf.float64),
      step_metadata_info={'physics_state': tfds.features.Tensor(
          shape=(STATE_SIZE,), dtype=dtypes['physics_state'],
          encoding=encoding)},
      episode_metadata_info={'episode_id': tf.int64, 'success': tf.bool})
  if 'action' in drop:
    config.action_info = None
  config.episode_metadata_info = {
      k: v for k, v in config.episode_metadata_info.items() if k not in drop}
  for episode in episodes:
    for field in drop:
      episode.pop(field, None)
      episode['steps'].pop(field, None)
  builder = _OtherProducer(episodes, config, data_dir=str(path / 'tfds'))
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      try_download_gcs=False))
  return pathlib.Path(builder.data_dir)


def _rlds_episodes(seed, count=2, length=6):
  rng = np.random.default_rng(seed)
  return [dataset.episode_to_rlds(_episode(rng, length), i)
          for i in range(count)]


def _rewrite_records(shard, edit):
  """Replaces each record of `shard` with `edit(index, record)`'s bytes."""
  records = list(tf.data.TFRecordDataset(str(shard)).as_numpy_iterator())
  with tf.io.TFRecordWriter(str(shard)) as writer:
    for index, record in enumerate(records):
      new = edit(index, record)
      if new is not None:
        writer.write(new)


def _edit_info(path, edit):
  info = json.loads((path / dataset.INFO_FILE).read_text())
  edit(info)
  (path / dataset.INFO_FILE).write_text(json.dumps(info))


def test_round_trip_preserves_every_field(tmp_path):
  rng = np.random.default_rng(0)
  episodes = [_episode(rng, length=5 + i) for i in range(5)]
  _write(tmp_path / 'demos', episodes, num_shards=3)
  assert len(_shards(tmp_path / 'demos')) == 3
  loaded = _load(tmp_path / 'demos', include_actions=True)
  assert len(loaded) == 5
  assert loaded.metadata['count'] == 5
  assert loaded.metadata['style'] == 'A'
  assert loaded.metadata['episode_lengths'] == [6, 7, 8, 9, 10]  # Frames.
  for i, (original, demo) in enumerate(zip(episodes, loaded.episodes)):
    assert demo.episode_id == i
    for key in ('body', 'image'):
      np.testing.assert_array_equal(
          demo.observations[key],
          np.stack([o[key] for o in original['observations']]))
    np.testing.assert_array_equal(demo.physics_states,
                                  original['physics_states'])
    np.testing.assert_allclose(demo.rewards, original['rewards'], rtol=1e-6)
    np.testing.assert_array_equal(demo.actions, original['actions'])
    assert demo.success


def test_tfds_opens_a_written_set_as_rlds_episodes(tmp_path):
  rng = np.random.default_rng(30)
  episodes = [_episode(rng, length=4 + i) for i in range(3)]
  path = _write(tmp_path / 'demos', episodes, num_shards=2)
  builder = tfds.builder_from_directory(path)
  assert builder.info.splits['train'].num_examples == 3
  assert builder.info.metadata is None or 'preset' in builder.info.metadata
  ds = builder.as_dataset(split='train', shuffle_files=False)
  lengths = ds.map(lambda e: rlds.transformations.episode_length(e['steps']))
  assert list(lengths.as_numpy_iterator()) == [5, 6, 7]
  returns = ds.map(lambda e: rlds.transformations.sum_dataset(
      e['steps'], lambda step: step['reward']))
  np.testing.assert_allclose(list(returns.as_numpy_iterator()),
                             [e['rewards'].sum() for e in episodes],
                             rtol=1e-5)
  first = next(iter(ds))
  assert int(first['episode_id']) == 0
  step = next(iter(first['steps']))
  assert set(step) == {'observation', 'action', 'reward', 'discount',
                       'is_first', 'is_last', 'is_terminal', 'physics_state'}
  assert bool(step['is_first'])
  np.testing.assert_array_equal(step['observation']['body'],
                                episodes[0]['observations'][0]['body'])


def test_set_written_directly_with_tfds_loads(tmp_path):
  rlds_episodes = _rlds_episodes(31, count=3)
  path = _write_with_tfds(tmp_path, [dict(e) for e in rlds_episodes])
  assert not (path / dataset.METADATA_FILE).exists()
  loaded = _load(path, include_actions=True)
  assert loaded.metadata == {}
  assert sorted(d.episode_id for d in loaded.episodes) == [0, 1, 2]
  for demo in loaded.episodes:
    original = rlds_episodes[demo.episode_id]['steps']
    np.testing.assert_array_equal(demo.observations['image'],
                                  original['observation']['image'])
    np.testing.assert_array_equal(demo.physics_states,
                                  original['physics_state'])
    np.testing.assert_allclose(demo.rewards, original['reward'][:-1])
    np.testing.assert_array_equal(demo.actions, original['action'][:-1])
    assert demo.rewards.dtype == np.float32


def test_actions_are_not_loaded_unless_asked(tmp_path):
  _write(tmp_path / 'demos', [_episode(np.random.default_rng(1))])
  assert _load(tmp_path / 'demos').episodes[0].actions is None


def test_existing_dataset_is_not_overwritten(tmp_path):
  _write(tmp_path / 'demos', [_episode(np.random.default_rng(2))])
  with pytest.raises(FileExistsError):
    _write(tmp_path / 'demos', [_episode(np.random.default_rng(2))])


def test_crash_while_writing_leaves_nothing(tmp_path):
  rng = np.random.default_rng(3)

  def episodes():
    yield _episode(rng)
    yield _episode(rng)
    raise KeyboardInterrupt('simulated crash')

  with pytest.raises(KeyboardInterrupt):
    _write(tmp_path / 'demos', episodes())
  assert os.listdir(tmp_path) == []


def test_missing_path(tmp_path):
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{tmp_path}/nowhere: demonstration directory'):
    _load(tmp_path / 'nowhere')


@pytest.mark.parametrize('name', [dataset.INFO_FILE, dataset.FEATURES_FILE])
def test_missing_tfds_file(tmp_path, name):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(4))])
  (path / name).unlink()
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{path}/{name}: missing \\(not a TFDS dataset'):
    _load(path)


def test_set_in_the_format_before_tfds_is_named(tmp_path):
  path = tmp_path / 'demos'
  path.mkdir()
  (path / 'metadata.json').write_text('{"preset": "vision", "count": 1}')
  (path / 'episodes-00000-of-00001.tfrecord').write_bytes(b'')
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{path}/{dataset.INFO_FILE}: missing \\(it holds a '
                     'set in the format of acme_metamimic before TFDS'):
    _load(path)


def test_truncated_shard(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(5)) for _ in range(3)])
  shard, = _shards(path)
  data = shard.read_bytes()
  shard.write_bytes(data[:len(data) - 100])
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{shard}: truncated or corrupt TFRecord after 2 '
                     'episodes'):
    _load(path)


def test_corrupt_shard(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(6)) for _ in range(2)])
  shard, = _shards(path)
  data = bytearray(shard.read_bytes())
  data[200] ^= 0xFF
  shard.write_bytes(bytes(data))
  with pytest.raises(dataset.DemonstrationError, match=str(shard)):
    _load(path)


def test_wrong_shape(tmp_path):
  episode = _episode(np.random.default_rng(7))
  for o in episode['observations']:
    o['body'] = np.zeros(5, np.float32)
  _write(tmp_path / 'demos', [episode])
  with pytest.raises(dataset.DemonstrationError,
                     match=r"features.json: field 'steps/observation/body': "
                     r'shape \(5,\), expected \(4,\)'):
    _load(tmp_path / 'demos')


def test_wrong_dtype(tmp_path):
  episode = _episode(np.random.default_rng(8))
  for o in episode['observations']:
    o['image'] = o['image'].astype(np.float32)
  _write(tmp_path / 'demos', [episode])
  with pytest.raises(dataset.DemonstrationError,
                     match=r"features.json: field 'steps/observation/image': "
                     'dtype float32, expected uint8'):
    _load(tmp_path / 'demos')


def test_wrong_physics_state_size(tmp_path):
  episode = _episode(np.random.default_rng(9))
  episode['physics_states'] = episode['physics_states'][:, :5]
  _write(tmp_path / 'demos', [episode])
  with pytest.raises(dataset.DemonstrationError,
                     match=r"features.json: field 'steps/physics_state': shape "
                     r'\(5,\), expected \(7,\)'):
    _load(tmp_path / 'demos')


def test_physics_state_must_be_float64(tmp_path):
  episodes = _rlds_episodes(32)
  for episode in episodes:
    episode['steps']['physics_state'] = episode['steps'][
        'physics_state'].astype(np.float32)
  path = _write_with_tfds(tmp_path, episodes,
                          dtypes=dict(physics_state=tf.float32))
  with pytest.raises(dataset.DemonstrationError,
                     match=r"features.json: field 'steps/physics_state': "
                     'dtype float32, expected float64'):
    _load(path)


def test_physics_state_must_be_stored_exactly(tmp_path):
  path = _write_with_tfds(tmp_path, _rlds_episodes(33),
                          encoding=tfds.features.Encoding.NONE)
  with pytest.raises(dataset.DemonstrationError,
                     match=r"features.json: field 'steps/physics_state': "
                     'float64 written without an encoding, which TFDS stores '
                     'as float32'):
    _load(path)


def test_preset_mismatch(tmp_path):
  _write(tmp_path / 'demos', [_episode(np.random.default_rng(10))],
         preset='features')
  with pytest.raises(dataset.DemonstrationError,
                     match=r"metadata.json: field 'preset': dataset was "
                     "recorded with preset 'features', the environment runs "
                     "'vision'"):
    _load(tmp_path / 'demos')


@pytest.mark.parametrize('value', [np.nan, np.inf])
def test_non_finite_values(tmp_path, value):
  episode = _episode(np.random.default_rng(11))
  episode['observations'][3]['body'][1] = value
  _write(tmp_path / 'demos', [episode])
  shard, = _shards(tmp_path / 'demos')
  with pytest.raises(dataset.DemonstrationError,
                     match=f"{shard} \\(episode 0\\): field "
                     "'steps/observation/body': holds NaN or inf"):
    _load(tmp_path / 'demos')


def test_max_episodes_keeps_the_first_across_shards(tmp_path):
  _write(tmp_path / 'demos',
         [_episode(np.random.default_rng(13)) for _ in range(3)],
         num_shards=2)
  for max_episodes, expected in ((1, [0]), (2, [0, 1]), (3, [0, 1, 2]),
                                 (9, [0, 1, 2])):
    loaded = _load(tmp_path / 'demos', max_episodes=max_episodes)
    assert [e.episode_id for e in loaded.episodes] == expected


@pytest.mark.parametrize('max_episodes', [0, -1])
def test_max_episodes_must_be_positive(tmp_path, max_episodes):
  # Issue 12: max_episodes=0 used to return one episode.
  _write(tmp_path / 'demos', [_episode(np.random.default_rng(14))])
  with pytest.raises(ValueError,
                     match=f'max_episodes={max_episodes}: give a positive'):
    _load(tmp_path / 'demos', max_episodes=max_episodes)


@pytest.mark.parametrize('max_episodes', [None, 1])
def test_missing_shard(tmp_path, max_episodes):
  # With max_episodes=1 the missing second shard is never read, but a set with
  # a missing shard is still broken and must not load.
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(15)) for _ in range(3)],
         num_shards=2)
  shard = _shards(path)[1]
  shard.unlink()
  with pytest.raises(dataset.DemonstrationError,
                     match=f"dataset_info.json: field 'splits': {shard} is "
                     'missing'):
    _load(path, max_episodes=max_episodes)


def test_shard_holds_fewer_episodes_than_listed(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(16)) for _ in range(3)],
         num_shards=2)
  shard = _shards(path)[0]
  _rewrite_records(shard, lambda index, record: record if index == 0 else None)
  with pytest.raises(dataset.DemonstrationError,
                     match=f"dataset_info.json: field 'splits': {shard} "
                     f'holds 1 episodes, dataset_info.json says 2'):
    _load(path)


def test_shard_holds_more_episodes_than_listed(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(17)) for _ in range(2)])
  shard, = _shards(path)

  def list_one_episode(info):
    split, = info['splits']
    split['shardLengths'] = ['1']

  _edit_info(path, list_one_episode)
  with pytest.raises(dataset.DemonstrationError,
                     match=f"dataset_info.json: field 'splits': {shard} "
                     f'holds 2 episodes, dataset_info.json says 1'):
    _load(path)


def test_no_train_split(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(18))])

  def rename_split(info):
    info['splits'][0]['name'] = 'test'

  _edit_info(path, rename_split)
  with pytest.raises(dataset.DemonstrationError,
                     match="dataset_info.json: field 'splits': no 'train' "
                     r"split \(it has \['test'\]\)"):
    _load(path)


@pytest.mark.parametrize('name', [dataset.METADATA_FILE, dataset.INFO_FILE,
                                  dataset.FEATURES_FILE])
@pytest.mark.parametrize('content', [
    b'{"preset": "vision", ', b'\xff\xfe not text', b''],
                         ids=['truncated', 'binary', 'empty'])
def test_json_file_not_json(tmp_path, name, content):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(20))])
  (path / name).write_bytes(content)
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{path}/{name}: not valid JSON'):
    _load(path)


def test_metadata_not_an_object(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(21))])
  (path / 'metadata.json').write_text('["preset", "count"]')
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{path}/metadata.json: expected a JSON object, '
                     'got list'):
    _load(path)


def test_missing_observation_key(tmp_path):
  episode = _episode(np.random.default_rng(23))
  for o in episode['observations']:
    del o['body']
  _write(tmp_path / 'demos', [episode])
  with pytest.raises(dataset.DemonstrationError,
                     match="features.json: field 'steps/observation/body': "
                     'missing'):
    _load(tmp_path / 'demos')


@pytest.mark.parametrize('field, step, value, problem', [
    ('is_first', 0, False, r'must be True at step 0 only, is True at '
     r'steps \[\]'),
    ('is_first', 3, True, r'must be True at step 0 only, is True at '
     r'steps \[0, 3\]'),
    ('is_last', -1, False, r'must be True at step 6 only, is True at '
     r'steps \[\]'),
    ('is_last', 3, True, r'must be True at step 6 only, is True at '
     r'steps \[3, 6\]'),
    ('is_terminal', 3, True, r'may be True at the last step \(6\) '
     r'only, is True at steps \[3\]'),
], ids=['first_cleared', 'first_twice', 'last_cleared', 'last_twice',
        'terminal_early'])
def test_wrong_episode_flags(tmp_path, field, step, value, problem):
  episode, = _rlds_episodes(24, count=1)
  episode['steps'][field][step] = value
  path = _write_with_tfds(tmp_path, [episode])
  with pytest.raises(dataset.DemonstrationError,
                     match=r"tfrecord-00000-of-00001 \(episode 0\): field "
                     f"'steps/{field}': {problem}"):
    _load(path)


@pytest.mark.parametrize('record', [
    b'not an example',
    # A tensor written without its Example parses as one of unknown fields.
    tf.io.serialize_tensor(tf.constant([1., 2.])).numpy(),
    b'',
], ids=['garbage', 'bare_tensor', 'empty'])
def test_record_is_not_an_example(tmp_path, record):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(25)) for _ in range(2)])
  shard, = _shards(path)
  _rewrite_records(shard, lambda index, old: record if index else old)
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{shard} \\(episode 1\\): record does not parse as '
                     'an example of features.json'):
    _load(path)


@pytest.mark.parametrize('field', ['success', 'episode_id'])
def test_missing_episode_metadata(tmp_path, field):
  path = _write_with_tfds(tmp_path, _rlds_episodes(26), drop=[field])
  with pytest.raises(dataset.DemonstrationError,
                     match=f"features.json: field '{field}': missing"):
    _load(path)


def test_include_actions_without_actions(tmp_path):
  path = _write_with_tfds(tmp_path, _rlds_episodes(27), drop=['action'])
  # The imitation path never reads actions, so their absence is fine there.
  assert all(d.actions is None for d in _load(path).episodes)
  with pytest.raises(dataset.DemonstrationError,
                     match="features.json: field 'steps/action': missing"):
    _load(path, include_actions=True)


def test_set_listing_no_episodes(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(28))])

  def list_nothing(info):
    split, = info['splits']
    split['shardLengths'] = []

  _edit_info(path, list_nothing)
  with pytest.raises(dataset.DemonstrationError,
                     match="dataset_info.json: field 'splits': the 'train' "
                     'split holds no episodes'):
    _load(path)


def test_episode_of_one_step(tmp_path):
  episode, = _rlds_episodes(29, count=1, length=1)
  episode['steps'] = tf.nest.map_structure(lambda x: x[:1], episode['steps'])
  episode['steps']['is_last'][0] = True
  path = _write_with_tfds(tmp_path, [episode])
  with pytest.raises(dataset.DemonstrationError,
                     match=r"\(episode 0\): field 'steps': 1 steps, expected "
                     'at least 2'):
    _load(path)
