"""Tests for the RLDS-shaped demonstration writer and validating loader."""

import json
import os

from acme import specs
import numpy as np
import pytest

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
