"""launch/results_tables.py: tables generated from stored run JSONs shaped like
evaluate.py's and the coordinator's output; --check names stale tables; bad
or missing fields name their file and field; the committed docs are current."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCRIPT = os.path.join(_ROOT, 'launch', 'results_tables.py')

_MODULE = []


def _tables():
  """Imports launch/results_tables.py once (absl flags are defined once)."""
  if not _MODULE:
    spec = importlib.util.spec_from_file_location('results_tables', _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _MODULE.append(module)
  return _MODULE[0]


def _imitation(per_step, num_episodes=2.):
  return dict(
      num_episodes=num_episodes, imitation_return=per_step * 200.,
      imitation_reward_per_step=per_step,
      imitation_reward_normalized=per_step / 17., task_return=0.2,
      demo_task_return=90.5, task_return_pct_of_demo=0.25, success_rate=0.,
      demo_success_rate=0.5, early_termination_rate=0., completion=1.)


def _task(task_return, reach_rate, closest, num_episodes=2.):
  return dict(
      num_episodes=num_episodes, task_return=task_return,
      demo_task_return=90.5, task_return_at_demo_length=task_return,
      task_return_pct_of_demo=0., success_rate=0., demo_success_rate=0.5,
      frames_to_stack=float('nan'), demo_frames_to_stack=120.,
      stacked_faster_rate=0., reach_rate=reach_rate,
      closest_approach_m=closest, demo_closest_approach_m=0.004)


def _episode(demo_id):
  return dict(
      demo_id=demo_id, demo_steps=199, demo_task_return=90.5,
      demo_success=True, demo_frames_to_stack=120, imitation_steps=199,
      imitation_return=52.3, imitation_task_return=0.,
      imitation_success=False, imitation_early_terminated=False,
      task_policy_return=0., task_policy_success=False,
      task_policy_frames_to_stack=None)


def _evaluation(validation, train, learner_steps=None, task=(0., 0., 0.21)):
  """What `launch/evaluate.py --output` writes (keys as in evaluate.py)."""
  source = (dict(kind='checkpoint', workdir='/w', learner_steps=learner_steps)
            if learner_steps else dict(kind='untrained', learner_steps={}))
  metrics = {
      'imitation_validation': _imitation(validation),
      'task_policy_validation': _task(*task),
      'imitation_train': _imitation(train),
      'task_policy_train': _task(0.175, 0.1, 0.204),
      'generalization_gap': dict(
          imitation_return=(train - validation) * 200.,
          imitation_reward_per_step=train - validation,
          task_return_pct_of_demo=0., success_rate=0.),
  }
  return dict(source=source, preset='features', early_termination='none',
              metrics=metrics,
              episodes={'validation': [_episode(0), _episode(1)],
                        'train': [_episode(0), _episode(1)]},
              seconds=41.2)


def _summary(imitation_steps, task_steps):
  """What the coordinator writes to <workdir>/summary.json."""
  row = dict(episodes=3., imitation_return=105.7, task_return=0.)
  return dict(
      counts=dict(imitation_learner_steps=imitation_steps,
                  task_learner_steps=task_steps, imitation_actor_steps=19880.,
                  task_actor_steps=12800.),
      elapsed_seconds=360.4, baseline='metamimic', workdir='/w',
      steps_keys=['imitation_learner_steps', 'task_learner_steps'],
      table_sizes=dict(imitation=19880, task=32680),
      evaluator_imitation_validation=dict(first=row, last=row, episodes=40))


def _write(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(data, f, indent=2, sort_keys=True)


DOC = """# Results

Some text that stays; a marker inside a line, `<!-- results:main_job -->`,
is prose.

<!-- results:main_job -->
| stale | table |
<!-- /results:main_job -->

More text that stays.
"""


@pytest.fixture
def repo(tmp_path):
  """A results directory with an untrained run and a stored main-job run."""
  module = _tables()
  results = tmp_path / 'results'
  _write(str(results / 'untrained' / 'evaluation.json'),
         _evaluation(0.270, 0.253))
  workdir = tmp_path / 'workdir'
  _write(str(workdir / 'evaluation.json'),
         _evaluation(0.66, 0.702, dict(imitation_learner=6601,
                                       task_learner=8320)))
  _write(str(workdir / 'summary.json'), _summary(6464., 8188.))
  module.store_run('main_job_before_fix', workdir=str(workdir),
                   command='bash launch/main.sh', seed=0, max_seconds=360,
                   label='main job, before the fix', results_dir=str(results))
  doc = tmp_path / 'doc.md'
  doc.write_text(DOC)
  return module, str(results), str(doc)


def test_tables_are_regenerated_between_the_markers(repo):
  module, results, doc = repo
  stale = module.update_docs([doc], results)
  assert stale == [f"{doc}: table 'main_job' is out of date"]
  text = open(doc).read()
  assert text.startswith(DOC[:DOC.index('<!-- results:main_job -->\n|')] +
                         '<!-- results:main_job -->\n| run | seed |')
  assert text.endswith('<!-- /results:main_job -->\n\nMore text that stays.\n')
  rows = [line for line in text.splitlines() if line.startswith('| ')]
  assert rows[1] == ('| untrained | - | - | - / - | - / - | 0.270 / 0.253 | '
                     '-0.017 | 0 / 0.175 | 0 / 0.1 | 0.210 / 0.204 | '
                     '0% / 0% | 2 |')
  assert rows[2] == ('| main job, before the fix | 0 | 360 | 6,464 / 8,188 | '
                     '6,601 / 8,320 | 0.660 / 0.702 | +0.042 | 0 / 0.175 | '
                     '0 / 0.1 | 0.210 / 0.204 | 0% / 0% | 2 |')
  assert ('from `' + results + '/<run>/*.json` for the runs `untrained`, '
          '`main_job_before_fix`.') in text
  # A second pass changes nothing.
  assert module.update_docs([doc], results) == []
  assert open(doc).read() == text


def _cli(*flags):
  return subprocess.run([sys.executable, _SCRIPT, *flags], cwd=_ROOT,
                        capture_output=True, text=True, timeout=120)


def test_check_detects_drift_and_names_the_table(repo):
  module, results, doc = repo
  module.update_docs([doc], results)
  before = open(doc).read()
  result = _cli('--check', f'--results_dir={results}', f'--docs={doc}')
  assert result.returncode == 0, result.stderr[-2000:]

  path = os.path.join(results, 'main_job_before_fix', 'evaluation.json')
  data = json.load(open(path))
  data['metrics']['imitation_validation']['imitation_reward_per_step'] = 0.5
  _write(path, data)
  result = _cli('--check', f'--results_dir={results}', f'--docs={doc}')
  assert result.returncode == 1
  assert f"{doc}: table 'main_job' is out of date" in result.stderr
  assert open(doc).read() == before  # --check writes nothing.

  result = _cli(f'--results_dir={results}', f'--docs={doc}')
  assert result.returncode == 0, result.stderr[-2000:]
  assert '| 0.500 / 0.702 |' in open(doc).read()


def _break(results, run, file, edit):
  path = os.path.join(results, run, file)
  data = json.load(open(path))
  edit(data)
  _write(path, data)
  return path


def test_missing_field_names_file_and_field(repo):
  module, results, doc = repo
  path = _break(results, 'main_job_before_fix', 'evaluation.json',
                lambda d: d['metrics']['task_policy_train'].pop('reach_rate'))
  with pytest.raises(module.ResultsError) as error:
    module.update_docs([doc], results)
  assert (f"{path}: no field 'metrics.task_policy_train.reach_rate' "
          "(column 'reach rate, held-out / train')") == str(error.value)
  result = _cli(f'--results_dir={results}', f'--docs={doc}')
  assert result.returncode == 2
  assert f"{path}: no field 'metrics.task_policy_train.reach_rate'" in (
      result.stderr)
  assert open(doc).read() == DOC


def test_bad_field_names_file_and_field(repo):
  module, results, doc = repo
  path = _break(results, 'untrained', 'evaluation.json',
                lambda d: d['metrics']['generalization_gap'].update(
                    imitation_reward_per_step='high'))
  with pytest.raises(module.ResultsError, match=(
      f"{path}: field 'metrics.generalization_gap.imitation_reward_per_step' "
      "is 'high', not a number")):
    module.update_docs([doc], results)


def test_missing_files_are_named(repo):
  module, results, doc = repo
  os.remove(os.path.join(results, 'main_job_before_fix', 'summary.json'))
  # The coordinator columns show '-' without a summary...
  module.update_docs([doc], results)
  assert '| main job, before the fix | 0 | 360 | - / - | 6,601 / 8,320 |' in (
      open(doc).read())
  # ...but a run without evaluate.py's output is an error naming the file.
  path = os.path.join(results, 'untrained', 'evaluation.json')
  os.remove(path)
  with pytest.raises(module.ResultsError, match=f'{path}: missing'):
    module.update_docs([doc], results)
  # So is a run the spec names exactly that is not stored.
  table = module.Table('t', ('nope',), (module.Column('run', ('run.label',)),))
  with pytest.raises(module.ResultsError,
                     match=os.path.join(results, 'nope') + ': missing'):
    module.render(table, results)


def test_a_table_whose_globs_match_no_run_says_so(repo):
  module, results, _ = repo
  table = module.Table('later', ('later_*',),
                       (module.Column('run', ('run.label',)),))
  assert module.render(table, results) == (
      f'No run in `{results}` matches this table (`later`: `later_*`) yet; '
      '`launch/results_tables.py` fills it in.')


@pytest.mark.parametrize('text,message', [
    ('<!-- results:main_job -->\nno end\n', 'doc.md:1: <!-- results:main_job '
     '--> is not followed by <!-- /results:main_job -->'),
    ('x\n<!-- /results:main_job -->\n', 'doc.md:2: <!-- /results:main_job '
     '--> without an opening marker'),
    ('<!-- results:nope -->\n<!-- /results:nope -->\n',
     "doc.md:1: unknown table 'nope'"),
])
def test_bad_markers_name_the_doc_and_line(repo, text, message):
  module, results, doc = repo
  with open(doc, 'w') as f:
    f.write(text)
  with pytest.raises(module.ResultsError) as error:
    module.update_docs([doc], results)
  assert str(error.value).startswith(doc[:-len('doc.md')] + message)


def test_store_refuses_large_or_wrong_files_and_overwrites(repo, tmp_path):
  module, results, _ = repo
  workdir = tmp_path / 'big'
  _write(str(workdir / 'summary.json'), _summary(1., 1.))
  evaluation = _evaluation(0.5, 0.5, dict(imitation_learner=1,
                                          task_learner=1))
  evaluation['episodes']['validation'] *= 2000  # Far over the limit.
  _write(str(workdir / 'evaluation.json'), evaluation)
  with pytest.raises(module.ResultsError, match='over the 262,144-byte limit'):
    module.store_run('big', workdir=str(workdir), results_dir=results)
  assert not os.path.exists(os.path.join(results, 'big'))
  assert not os.path.exists(os.path.join(results, 'big.tmp'))

  _write(str(workdir / 'evaluation.json'), _summary(1., 1.))
  with pytest.raises(module.ResultsError, match="no field 'metrics'"):
    module.store_run('big', workdir=str(workdir), results_dir=results)

  with pytest.raises(module.ResultsError, match='exists; pass overwrite'):
    module.store_run('untrained', evaluation=str(workdir / 'summary.json'),
                     results_dir=results)
  _write(str(workdir / 'evaluation.json'), _evaluation(0.3, 0.2))
  result = _cli(f'--evaluation={workdir / "evaluation.json"}',
                '--name=untrained', '--overwrite', '--seed=0',
                f'--results_dir={results}', '--docs=')
  assert result.returncode == 0, result.stderr[-2000:]
  stored = os.path.join(results, 'untrained')
  assert sorted(os.listdir(stored)) == ['evaluation.json', 'run.json']
  run = json.load(open(os.path.join(stored, 'run.json')))
  assert run['name'] == 'untrained' and run['seed'] == 0
  assert json.load(open(os.path.join(stored, 'evaluation.json'))) == (
      json.loads(json.dumps(_evaluation(0.3, 0.2))))


def test_fidelity_records_hold_the_issues_fields(repo):
  module, results, _ = repo
  records = json.loads(module.fidelity_text(results, ('main_job_*',)))
  assert records == [dict(
      run='main_job_before_fix', agent='metamimic', seed=0,
      config_overrides={}, training_seconds=360.4,
      learner_steps=dict(imitation_learner=6601, task_learner=8320),
      heldout_pct_of_demo_task_reward=0.25,
      train_pct_of_demo_task_reward=0.25,
      heldout_imitation_reward_per_step=0.66,
      train_imitation_reward_per_step=0.702, task_policy_reach_rate=0.,
      # An evaluate.py output from before lift_rate existed.
      task_policy_lift_rate=None, task_policy_success_rate=0.)]
  # A screen run (docs/results/screen.sh) has its seed in its name only.
  screen = os.path.join(results, 'screen_x', 'armA_seed3')
  shutil.copytree(os.path.join(results, 'main_job_before_fix'), screen)
  os.remove(os.path.join(screen, 'run.json'))
  record, = json.loads(module.fidelity_text(results, ('screen_x/arm*',)))
  assert (record['run'], record['seed']) == ('screen_x/armA_seed3', 3)
  # No run matches the committed patterns here: no file is made.
  assert module.update_fidelity(results) == []
  path = os.path.join(results, 'fidelity.json')
  assert not os.path.exists(path)
  # Written once, then current; a check names it when a run changes.
  stale = [f'{path} is out of date']
  assert module.update_fidelity(results, patterns=('screen_x/*',)) == stale
  assert json.load(open(path)) == [record]
  assert module.update_fidelity(results, patterns=('screen_x/*',)) == []
  _break(results, 'screen_x/armA_seed3', 'evaluation.json', lambda d: d[
      'metrics']['task_policy_validation'].update(lift_rate=0.5))
  assert module.update_fidelity(results, check=True,
                                patterns=('screen_x/*',)) == stale
  assert json.load(open(path)) == [record]  # A check writes nothing.


def test_fidelity_record_of_a_baseline_has_null_imitation_fields(repo):
  module, results, _ = repo
  run = os.path.join(results, 'screen_x', 'armD_seed1')
  shutil.copytree(os.path.join(results, 'main_job_before_fix'), run)
  os.remove(os.path.join(run, 'run.json'))

  def as_d4pg(evaluation):
    for key in [k for k in evaluation['metrics'] if 'imitation' in k]:
      del evaluation['metrics'][key]
  _break(results, 'screen_x/armD_seed1', 'evaluation.json', as_d4pg)
  _break(results, 'screen_x/armD_seed1', 'summary.json',
         lambda summary: summary.update(baseline='d4pg'))
  record, = json.loads(module.fidelity_text(results, ('screen_x/arm*',)))
  assert record['agent'] == 'd4pg'
  assert [key for key, value in record.items() if value is None] == [
      'heldout_pct_of_demo_task_reward', 'train_pct_of_demo_task_reward',
      'heldout_imitation_reward_per_step', 'train_imitation_reward_per_step',
      'task_policy_lift_rate']
  assert record['task_policy_reach_rate'] == 0.
  # With an imitation policy evaluated, a missing field is still an error.
  _break(results, 'main_job_before_fix', 'evaluation.json', lambda e: e[
      'metrics']['imitation_train'].pop('task_return_pct_of_demo'))
  with pytest.raises(module.ResultsError, match='task_return_pct_of_demo'):
    module.fidelity_text(results, ('main_job_*',))


def test_fidelity_record_of_the_joint_tracker_has_no_training(repo):
  # evaluate.py --policy=joint_tracker: no summary.json, no task policy.
  module, results, _ = repo
  run = os.path.join(results, 'screen_x', 'armT_seed0')
  shutil.copytree(os.path.join(results, 'main_job_before_fix'), run)
  for name in ('run.json', 'summary.json'):
    os.remove(os.path.join(run, name))

  def as_tracker(evaluation):
    evaluation['source'] = dict(kind='joint_tracker', learner_steps={},
                                gain=0.5)
    for key in [k for k in evaluation['metrics'] if 'task_policy' in k]:
      del evaluation['metrics'][key]
  _break(results, 'screen_x/armT_seed0', 'evaluation.json', as_tracker)
  record, = json.loads(module.fidelity_text(results, ('screen_x/arm*',)))
  assert record['agent'] == 'joint_tracker'
  assert record['training_seconds'] is None and record['learner_steps'] == {}
  assert record['heldout_imitation_reward_per_step'] is not None
  assert [key for key, value in record.items() if value is None] == [
      'training_seconds', 'task_policy_reach_rate', 'task_policy_lift_rate',
      'task_policy_success_rate']
  # A trained run without a summary is still an error.
  os.remove(os.path.join(results, 'main_job_before_fix', 'summary.json'))
  with pytest.raises(module.ResultsError, match='summary'):
    module.fidelity_text(results, ('main_job_before_fix',))


def test_committed_docs_match_the_committed_runs():
  module = _tables()
  stale = module.update_docs(module.DOCS, module.RESULTS_DIR, check=True)
  stale += module.update_fidelity(module.RESULTS_DIR, check=True)
  assert not stale, ('\n'.join(stale) +
                     '\nrun: python launch/results_tables.py')
