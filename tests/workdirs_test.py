"""Bad workdirs are refused before anything starts, naming the path.

In-process checks of `workdirs` with the real program definitions' signatures
and real TensorFlow checkpoints, and two runs of `launch/run_local.py` that
must fail before any demo is recorded or any node is launched.
"""

import functools
import json
import os
import subprocess
import sys

from acme.tf import savers as tf2_savers
import pytest
import tensorflow as tf

from acme_metamimic import agent_distributed
from acme_metamimic import baselines
from acme_metamimic import config as config_lib
from acme_metamimic import presets
from acme_metamimic import workdirs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _signature(preset='features', baseline='metamimic'):
  config = baselines.get(baseline).apply(config_lib.features_config())
  definition = agent_distributed.DistributedMetaMimic(
      environment_factory=functools.partial(presets.make_environment, preset),
      network_factory=functools.partial(presets.make_networks, preset, config),
      demonstrations_factory=lambda split: [],
      config=config, workdir='/unused', baseline=baselines.get(baseline),
      demo_transitions_factory=lambda: [])
  return dict(preset=preset, **definition.signature())


@pytest.fixture(scope='module')
def features_signature():
  return _signature()


def _run_local(tmp_path, *flags):
  demos = tmp_path / 'demos_train'
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'run_local.py'),
       f'--demos={demos}', f'--validation_demos={tmp_path / "demos_val"}',
       '--num_demos=1', '--num_validation_demos=1', *flags],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  # Failed before recording demos, so before launching anything.
  assert not demos.exists()
  return result.stderr


def test_a_path_under_a_file_is_refused(tmp_path):
  (tmp_path / 'file').write_text('')
  with pytest.raises(workdirs.WorkdirError, match='is not a directory'):
    workdirs.check_location(str(tmp_path / 'file' / 'run'))
  with pytest.raises(workdirs.WorkdirError, match='exists and is not a dir'):
    workdirs.check_location(str(tmp_path / 'file'))
  workdirs.check_location(str(tmp_path / 'new' / 'run'))  # Can be made.


def test_run_local_refuses_dev_null_before_recording_demos(tmp_path):
  stderr = _run_local(tmp_path, '--workdir=/dev/null/x')
  assert '--workdir=/dev/null/x: /dev/null is not a directory' in stderr


def test_signature_names_preset_variables_and_tables(features_signature):
  signature = features_signature
  assert signature['preset'] == 'features'
  assert signature['baseline'] == 'metamimic'
  assert set(signature['networks']) == {'imitation_learner', 'task_learner'}
  # The critic's head: 101 atoms over the 256-unit torso.
  assert signature['networks']['task_learner'][
      'critic/DiscreteValuedHead/linear/w:0'] == [256, 101]
  assert set(signature['tables']) == {config_lib.IMITATION_TABLE,
                                      config_lib.TASK_TABLE}
  imitation_item = signature['tables'][config_lib.IMITATION_TABLE]
  task_item = signature['tables'][config_lib.TASK_TABLE]
  assert imitation_item['observation/goal/body'] == 'float32 (18,)'
  assert task_item['observation/body'] == 'float32 (18,)'
  assert not any('goal' in field for field in task_item)
  assert task_item['action'] == imitation_item['action'] == 'float32 (9,)'


def test_signature_is_the_same_in_another_process(features_signature):
  # Spec dicts come in a different key order in each process; the signature
  # must not (the first version compared reprs, and every resume failed).
  script = ('import json, sys; sys.path.insert(0, "tests"); '
            'import workdirs_test; '
            'print(json.dumps(workdirs_test._signature(), sort_keys=True))')
  result = subprocess.run([sys.executable, '-c', script], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads(result.stdout.splitlines()[-1]) == json.loads(
      json.dumps(features_signature))


def test_another_setup_is_refused_saying_what_differs(tmp_path,
                                                      features_signature):
  workdir = str(tmp_path / 'run')
  assert workdirs.prepare(workdir, features_signature) is None
  with open(os.path.join(workdir, workdirs.RUN_FILE)) as f:
    assert json.load(f) == json.loads(json.dumps(features_signature))
  workdirs.prepare(workdir, features_signature)  # The same set-up resumes.

  with pytest.raises(workdirs.WorkdirError) as error:
    workdirs.prepare(workdir, _signature(preset='features_mlp64'))
  message = str(error.value)
  assert "preset: workdir 'features', this run 'features_mlp64'" in message
  assert ('networks.imitation_learner.critic/DiscreteValuedHead/linear/w:0: '
          'workdir [256, 101], this run [64, 101]') in message
  assert '... and ' in message and '--fresh' in message

  with pytest.raises(workdirs.WorkdirError) as error:
    workdirs.prepare(workdir, _signature(baseline='d4pg'))
  assert "baseline: workdir 'metamimic', this run 'd4pg'" in str(error.value)


def test_a_workdir_with_the_older_checkpoint_layout_is_refused(
    tmp_path, features_signature):
  # Workdirs written before `learning.CounterCheckpoint` hold the learner
  # counters in another layout and recorded no format; resuming them would
  # start the counts at zero.
  workdir = str(tmp_path / 'run')
  older = dict(features_signature)
  del older['checkpoint_format']
  workdirs.prepare(workdir, older)
  with pytest.raises(workdirs.WorkdirError) as error:
    workdirs.prepare(workdir, features_signature)
  assert (f'checkpoint_format: workdir None, this run '
          f'{agent_distributed.CHECKPOINT_FORMAT}') in str(error.value)


def _checkpoint(workdir, label='counter'):
  """A real Acme checkpoint, the way the counter node writes it."""
  objects = {'counter': tf.Variable(tf.range(4096, dtype=tf.float32))}
  tf2_savers.Checkpointer(objects_to_save=objects, directory=workdir,
                          subdirectory=label, add_uid=False).save(force=True)
  directory = os.path.join(workdir, workdirs.CHECKPOINTS, label)
  return tf.train.latest_checkpoint(directory)


def test_corrupt_checkpoint_is_named_and_fresh_moves_the_workdir_aside(
    tmp_path, features_signature):
  workdir = str(tmp_path / 'run')
  workdirs.prepare(workdir, features_signature)
  prefix = _checkpoint(workdir)
  workdirs.prepare(workdir, features_signature)  # Whole: accepted.
  data_file = prefix + '.data-00000-of-00001'
  with open(data_file, 'r+b') as f:
    f.seek(os.path.getsize(data_file) // 2)
    f.write(b'\xff' * 64)
  with pytest.raises(workdirs.WorkdirError) as error:
    workdirs.prepare(workdir, features_signature)
  assert f'checkpoint {prefix} is corrupt' in str(error.value)
  assert '--fresh' in str(error.value)

  moved = workdirs.prepare(workdir, features_signature, fresh=True)
  assert moved.startswith(workdir + '.old-')
  # Nothing deleted: the old workdir, corrupt file included, is kept.
  assert os.path.exists(data_file.replace(workdir, moved, 1))
  assert os.listdir(workdir) == [workdirs.RUN_FILE]


def test_checkpoint_state_without_its_files_is_refused(tmp_path,
                                                       features_signature):
  workdir = str(tmp_path / 'run')
  prefix = _checkpoint(workdir, 'imitation_learner')
  os.remove(prefix + '.index')
  with pytest.raises(workdirs.WorkdirError, match='imitation_learner'):
    workdirs.prepare(workdir, features_signature)


def test_run_local_refuses_a_workdir_of_another_preset(tmp_path,
                                                       features_signature):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  with open(workdir / workdirs.RUN_FILE, 'w') as f:
    json.dump(dict(features_signature, preset='features_mlp64',
                   config_overrides={'vmax': 400.}), f)
  stderr = _run_local(tmp_path, f'--workdir={workdir}', '--config=vmax=200',
                      '--max_replay_size=50000', '--seed=3')
  assert f'{workdir} was made by another set-up' in stderr
  assert "preset: workdir 'features_mlp64', this run 'features'" in stderr
  # --config overrides are part of the set-up a resume must repeat.
  assert 'config_overrides.vmax: workdir 400.0, this run 200.0' in stderr
  # So are the run seed and the tables' capacities: Reverb would restore the
  # workdir's capacities from its checkpoint whatever this run asked for.
  assert 'seed: workdir 0, this run 3' in stderr
  for table in ('imitation', 'task'):
    assert (f'table_capacities.{table}: workdir 100000, this run 50000'
            in stderr)


def test_run_local_refuses_the_tracker_fed_ablation_without_joint_positions(
    tmp_path):
  stderr = _run_local(tmp_path, f'--workdir={tmp_path / "run"}',
                      '--preset=vision', '--imitation_policy=joint_tracker')
  assert ("--imitation_policy=joint_tracker: --preset=vision's policy sees "
          'no joint positions (body)') in stderr
  assert not (tmp_path / 'run').exists()


def test_run_local_refuses_a_bad_config_override_before_recording_demos(
    tmp_path):
  stderr = _run_local(tmp_path, f'--workdir={tmp_path / "run"}',
                      '--config=vmax=-1')
  assert '--config: vmax (-1.0) must exceed vmin (0.0)' in stderr
  assert not (tmp_path / 'run').exists()
