"""Tests for the RLDS-shaped demonstration writer and validating loader."""

import json
import os

from acme import specs
import numpy as np
import pytest
import tensorflow as tf

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


def _rewrite_records(shard, edit):
  """Replaces each record of `shard` with `edit(index, example)`.

  `edit` returns the `tf.train.Example` (changed in place or new) or raw bytes
  to store instead, so a test corrupts one field of a set the writer made.
  """
  records = list(tf.data.TFRecordDataset(str(shard)).as_numpy_iterator())
  with tf.io.TFRecordWriter(str(shard)) as writer:
    for index, record in enumerate(records):
      new = edit(index, tf.train.Example.FromString(record))
      writer.write(new if isinstance(new, bytes) else new.SerializeToString())


def _edit_metadata(path, edit):
  metadata = json.loads((path / 'metadata.json').read_text())
  edit(metadata)
  (path / 'metadata.json').write_text(json.dumps(metadata))


def test_round_trip_preserves_every_field(tmp_path):
  rng = np.random.default_rng(0)
  episodes = [_episode(rng, length=5 + i) for i in range(5)]
  _write(tmp_path / 'demos', episodes, episodes_per_shard=2)
  shards = sorted(f for f in os.listdir(tmp_path / 'demos')
                  if f.endswith('.tfrecord'))
  assert len(shards) == 3
  loaded = _load(tmp_path / 'demos', include_actions=True)
  assert len(loaded) == 5
  assert loaded.metadata['count'] == 5
  assert loaded.metadata['style'] == 'A'
  for original, demo in zip(episodes, loaded.episodes):
    for key in ('body', 'image'):
      np.testing.assert_array_equal(
          demo.observations[key],
          np.stack([o[key] for o in original['observations']]))
    np.testing.assert_array_equal(demo.physics_states,
                                  original['physics_states'])
    np.testing.assert_allclose(demo.rewards, original['rewards'], rtol=1e-6)
    np.testing.assert_array_equal(demo.actions, original['actions'])
    assert demo.success


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
    raise KeyboardInterrupt('simulated crash')

  with pytest.raises(KeyboardInterrupt):
    _write(tmp_path / 'demos', episodes())
  assert os.listdir(tmp_path) == []


def test_missing_path(tmp_path):
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{tmp_path}/nowhere: demonstration directory'):
    _load(tmp_path / 'nowhere')


def test_empty_set(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(4))])
  metadata = json.loads((path / 'metadata.json').read_text())
  metadata.update(count=0, shards=[])
  (path / 'metadata.json').write_text(json.dumps(metadata))
  with pytest.raises(dataset.DemonstrationError,
                     match=r"metadata.json: field 'count': .*no episodes"):
    _load(path)


def test_truncated_shard(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(5)) for _ in range(3)])
  shard = next(path.glob('*.tfrecord'))
  data = shard.read_bytes()
  shard.write_bytes(data[:len(data) - 100])
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{shard}: truncated or corrupt'):
    _load(path)


def test_corrupt_shard(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(6)) for _ in range(2)])
  shard = next(path.glob('*.tfrecord'))
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
                     match=r"episode 0\): field 'steps/observation/body': "
                     r'shape \(7, 5\), expected \(7, 4\)'):
    _load(tmp_path / 'demos')


def test_wrong_dtype(tmp_path):
  episode = _episode(np.random.default_rng(8))
  for o in episode['observations']:
    o['image'] = o['image'].astype(np.float32)
  _write(tmp_path / 'demos', [episode])
  with pytest.raises(dataset.DemonstrationError,
                     match=r"field 'steps/observation/image': expected dtype "
                     'uint8'):
    _load(tmp_path / 'demos')


def test_wrong_physics_state_size(tmp_path):
  episode = _episode(np.random.default_rng(9))
  episode['physics_states'] = episode['physics_states'][:, :5]
  _write(tmp_path / 'demos', [episode])
  with pytest.raises(dataset.DemonstrationError,
                     match="field 'steps/physics_state': shape"):
    _load(tmp_path / 'demos')


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
  with pytest.raises(dataset.DemonstrationError,
                     match="field 'steps/observation/body': holds NaN or inf"):
    _load(tmp_path / 'demos')


def test_missing_metadata_field(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(12))])
  metadata = json.loads((path / 'metadata.json').read_text())
  del metadata['preset']
  (path / 'metadata.json').write_text(json.dumps(metadata))
  with pytest.raises(dataset.DemonstrationError,
                     match="metadata.json: field 'preset': missing"):
    _load(path)


def test_max_episodes_keeps_the_first_across_shards(tmp_path):
  _write(tmp_path / 'demos',
         [_episode(np.random.default_rng(13)) for _ in range(3)],
         episodes_per_shard=2)
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
         episodes_per_shard=2)
  shard = path / 'episodes-00001-of-00002.tfrecord'
  shard.unlink()
  with pytest.raises(dataset.DemonstrationError,
                     match=f"metadata.json: field 'shards': {shard} is "
                     'missing'):
    _load(path, max_episodes=max_episodes)


def test_shard_holds_fewer_episodes_than_metadata_says(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(16)) for _ in range(3)],
         episodes_per_shard=2)
  shard = path / 'episodes-00000-of-00002.tfrecord'
  records = list(tf.data.TFRecordDataset(str(shard)).as_numpy_iterator())
  with tf.io.TFRecordWriter(str(shard)) as writer:
    writer.write(records[0])
  with pytest.raises(dataset.DemonstrationError,
                     match=f"metadata.json: field 'shards': {shard} holds 1 "
                     'episodes, metadata says 2'):
    _load(path)


def test_shard_holds_more_episodes_than_metadata_says(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(17)) for _ in range(2)])

  def one_shard_says_one_episode(metadata):
    metadata['shards'][0]['episodes'] = 1
    metadata['count'] = 1

  _edit_metadata(path, one_shard_says_one_episode)
  shard = path / 'episodes-00000-of-00001.tfrecord'
  with pytest.raises(dataset.DemonstrationError,
                     match=f"metadata.json: field 'shards': {shard} holds 2 "
                     'episodes, metadata says 1'):
    _load(path)


def test_count_disagrees_with_shards(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(18)) for _ in range(3)],
         episodes_per_shard=2)
  _edit_metadata(path, lambda metadata: metadata.update(count=5))
  with pytest.raises(dataset.DemonstrationError,
                     match="metadata.json: field 'count': says 5 episodes, "
                     'the shards list 3'):
    _load(path)


@pytest.mark.parametrize('shards', [
    'episodes-00000-of-00001.tfrecord',
    [{'file': 'episodes-00000-of-00001.tfrecord'}],
    [{'file': 'episodes-00000-of-00001.tfrecord', 'episodes': '1'}],
], ids=['not_a_list', 'no_episodes', 'episodes_not_int'])
def test_malformed_shard_list(tmp_path, shards):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(19))])
  _edit_metadata(path, lambda metadata: metadata.update(shards=shards))
  with pytest.raises(dataset.DemonstrationError,
                     match="metadata.json: field 'shards': expected a list"):
    _load(path)


@pytest.mark.parametrize('content', [
    b'{"preset": "vision", ', b'\xff\xfe not text', b''],
                         ids=['truncated', 'binary', 'empty'])
def test_metadata_not_json(tmp_path, content):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(20))])
  (path / 'metadata.json').write_bytes(content)
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{path}/metadata.json: not valid JSON'):
    _load(path)


def test_metadata_not_an_object(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(21))])
  (path / 'metadata.json').write_text('["preset", "count", "shards", "specs"]')
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{path}/metadata.json: expected a JSON object, '
                     'got list'):
    _load(path)


def test_missing_metadata_file(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(22))])
  (path / 'metadata.json').unlink()
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{path}/metadata.json: missing metadata file'):
    _load(path)


def test_missing_observation_key(tmp_path):
  episode = _episode(np.random.default_rng(23))
  for o in episode['observations']:
    del o['body']
  _write(tmp_path / 'demos', [episode])
  shard = tmp_path / 'demos' / 'episodes-00000-of-00001.tfrecord'
  with pytest.raises(dataset.DemonstrationError,
                     match=f"{shard} \\(episode 0\\): field "
                     "'steps/observation/body': missing"):
    _load(tmp_path / 'demos')


@pytest.mark.parametrize('field, step, value, problem', [
    ('steps/is_first', 0, False, r'must be True at step 0 only, is True at '
     r'steps \[\]'),
    ('steps/is_first', 3, True, r'must be True at step 0 only, is True at '
     r'steps \[0, 3\]'),
    ('steps/is_last', -1, False, r'must be True at step 6 only, is True at '
     r'steps \[\]'),
    ('steps/is_last', 3, True, r'must be True at step 6 only, is True at '
     r'steps \[3, 6\]'),
    ('steps/is_terminal', 3, True, r'may be True at the last step \(6\) '
     r'only, is True at steps \[3\]'),
], ids=['first_cleared', 'first_twice', 'last_cleared', 'last_twice',
        'terminal_early'])
def test_wrong_episode_flags(tmp_path, field, step, value, problem):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(24)) for _ in range(2)])
  shard = path / 'episodes-00000-of-00001.tfrecord'

  def set_flag(index, example):
    if index == 1:
      feature = example.features.feature[field]
      flags = tf.io.parse_tensor(feature.bytes_list.value[0], tf.bool).numpy()
      flags[step] = value
      feature.bytes_list.value[:] = [tf.io.serialize_tensor(flags).numpy()]
    return example

  _rewrite_records(shard, set_flag)
  with pytest.raises(dataset.DemonstrationError,
                     match=f"{shard} \\(episode 1\\): field '{field}': "
                     f'{problem}'):
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
  shard = path / 'episodes-00000-of-00001.tfrecord'
  _rewrite_records(shard, lambda index, example: record if index else example)
  with pytest.raises(dataset.DemonstrationError,
                     match=f'{shard} \\(episode 1\\): record is not a '
                     'tf.train.Example'):
    _load(path)


@pytest.mark.parametrize('field', ['success', 'episode_id'])
def test_missing_episode_metadata(tmp_path, field):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(26))])
  shard = path / 'episodes-00000-of-00001.tfrecord'

  def drop(index, example):
    del example.features.feature[field]
    return example

  _rewrite_records(shard, drop)
  with pytest.raises(dataset.DemonstrationError,
                     match=f"{shard} \\(episode 0\\): field '{field}': "
                     'missing'):
    _load(path)


def test_include_actions_without_actions(tmp_path):
  path = tmp_path / 'demos'
  _write(path, [_episode(np.random.default_rng(27))])
  shard = path / 'episodes-00000-of-00001.tfrecord'

  def drop_actions(index, example):
    del example.features.feature['steps/action']
    return example

  _rewrite_records(shard, drop_actions)
  # The imitation path never reads actions, so their absence is fine there.
  assert _load(path).episodes[0].actions is None
  with pytest.raises(dataset.DemonstrationError,
                     match=f"{shard} \\(episode 0\\): field 'steps/action': "
                     'missing'):
    _load(path, include_actions=True)
