"""Generates the result tables of the docs from the run JSONs in docs/results/.

    python launch/results_tables.py            # rewrite every table in place
                                               # and docs/results/fidelity.json
    python launch/results_tables.py --check    # exit 1 naming each stale table
    python launch/results_tables.py --store=workdir/metamimic \
        --name=main_job_after_fix --command='bash launch/main.sh' --seed=0 \
        --max_seconds=360

A stored run is a directory docs/results/<name>/ holding the small JSON files
of one training run, copied from its workdir by --store:

  evaluation.json  what `launch/evaluate.py --output` writes (required);
  summary.json     what the program's coordinator writes at the end,
                   <workdir>/summary.json (optional: an untrained evaluation
                   has none);
  run.json         how it was made: command, seed, training budget, date,
                   notes (written by --store).

TABLES below declares each table: which runs are its rows (names or glob
patterns, in order) and which columns, each a format applied to JSON fields
named by a path `<file>.<key>.<key>...` (file = evaluation, summary or run).
In a Markdown file of --docs a table sits between two markers,

    <!-- results:NAME -->
    ...generated, do not edit...
    <!-- /results:NAME -->

each marker on a line of its own, and everything between them is rewritten.
A missing file or field is an error naming the file and the field, unless
the column gives a placeholder.
"""

import dataclasses
import datetime
import glob
import json
import math
import os
import re
import shutil
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, 'docs', 'results')
DOCS = ('README.md', 'docs/results.md', 'docs/fidelity.md')
EVALUATION_FILE = 'evaluation.json'
SUMMARY_FILE = 'summary.json'
RUN_FILE = 'run.json'
FILES = {'evaluation': EVALUATION_FILE, 'summary': SUMMARY_FILE,
         'run': RUN_FILE}
# evaluate.py's JSON is a few kB per 10 demos; a checkpoint, a log or a
# replay file that ends up here by mistake is far larger.
MAX_FILE_BYTES = 256 * 1024

_CHECK = flags.DEFINE_bool(
    'check', False, 'Change nothing; exit 1 naming every table whose text '
    'differs from what the stored runs give.')
_RESULTS_DIR = flags.DEFINE_string('results_dir', RESULTS_DIR,
                                   'Directory of stored runs.')
_DOCS = flags.DEFINE_list('docs', list(DOCS), 'Markdown files with tables '
                          '(relative to the repository root).')
_STORE = flags.DEFINE_string(
    'store', None, 'Workdir to copy evaluation.json and summary.json from '
    'into <results_dir>/<name>/ (then the tables are regenerated).')
_NAME = flags.DEFINE_string('name', None, 'Run name for --store.')
_EVALUATION = flags.DEFINE_string(
    'evaluation', None, 'evaluate.py output to store (default: '
    '<store>/evaluation.json); without --store, a run with no workdir, '
    'such as an untrained evaluation.')
_COMMAND = flags.DEFINE_string('command', None,
                               'Command that trained the run (run.json).')
_SEED = flags.DEFINE_integer('seed', None, 'Seed of the run (run.json).')
_MAX_SECONDS = flags.DEFINE_float('max_seconds', None,
                                  'Training wall time in seconds (run.json).')
_LABEL = flags.DEFINE_string('label', None,
                             'Row label in the tables (default: the name).')
_NOTES = flags.DEFINE_string('notes', None, 'Free text (run.json).')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Replace a stored run of the same name.')


class ResultsError(ValueError):
  """A stored run, a field or a doc's markers are missing or malformed."""


@dataclasses.dataclass(frozen=True)
class Column:
  """One table column: `fmt` applied to the fields at `paths`.

  Several paths give one cell, their values joined by ' / '. `missing` is
  shown where a field (or its whole file) is absent; None makes that an
  error.
  """
  header: str
  paths: Tuple[str, ...]
  fmt: str = '{:.3f}'
  missing: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Table:
  """Rows = the runs matching `runs` (each a name or a glob, in order)."""
  name: str
  runs: Tuple[str, ...]
  columns: Tuple[Column, ...]
  caption: str = ''


def _col(header, *paths, fmt='{:.3f}', missing=None):
  return Column(header, tuple(paths), fmt, missing)


_VALIDATION = 'evaluation.metrics.imitation_validation.'
_TRAIN = 'evaluation.metrics.imitation_train.'
_TASK_VALIDATION = 'evaluation.metrics.task_policy_validation.'
_TASK_TRAIN = 'evaluation.metrics.task_policy_train.'
_COUNTS = 'summary.counts.'
_CHECKPOINT = 'evaluation.source.learner_steps.'

_RUN = _col('run', 'run.label')
_IMITATION = _col('imitation per step, held-out / train',
                  _VALIDATION + 'imitation_reward_per_step',
                  _TRAIN + 'imitation_reward_per_step')
_TASK_RETURN = _col('task return, held-out / train starts',
                    _TASK_VALIDATION + 'task_return',
                    _TASK_TRAIN + 'task_return', fmt='{:.3g}')
_REACH = _col('reach rate, held-out / train', _TASK_VALIDATION + 'reach_rate',
              _TASK_TRAIN + 'reach_rate', fmt='{:.2g}')
_CLOSEST = _col('closest approach (m), held-out / train',
                _TASK_VALIDATION + 'closest_approach_m',
                _TASK_TRAIN + 'closest_approach_m')
_STACKED = _col('stacked, held-out / train', _TASK_VALIDATION + 'success_rate',
               _TASK_TRAIN + 'success_rate', fmt='{:.0%}')
# The main job (`bash launch/main.sh`, evaluated with `launch/evaluate.py`),
# after untrained networks evaluated on the same demos, in the order the runs
# were made (the final glob takes any later ones).
MAIN_JOB_RUNS = ('untrained*', 'main_job_before*', 'main_job_after_fix*',
                 'main_job_after_speed*', 'main_job_after*')

TABLES = (
    Table(
        name='main_job',
        runs=MAIN_JOB_RUNS,
        columns=(
            _RUN,
            _col('seed', 'run.seed', fmt='{:d}', missing='-'),
            _col('training (s)', 'run.max_seconds', fmt='{:.0f}',
                 missing='-'),
            _col('learner steps, imitation / task (coordinator)',
                 _COUNTS + 'imitation_learner_steps',
                 _COUNTS + 'task_learner_steps', fmt='{:,.0f}', missing='-'),
            _col('learner steps, imitation / task (evaluated checkpoint)',
                 _CHECKPOINT + 'imitation_learner',
                 _CHECKPOINT + 'task_learner', fmt='{:,.0f}', missing='-'),
            _IMITATION,
            _col('gap (train - held-out)',
                 'evaluation.metrics.generalization_gap.'
                 'imitation_reward_per_step', fmt='{:+.3f}'),
            _TASK_RETURN,
            _REACH,
            _CLOSEST,
            _STACKED,
            _col('demos per split', _VALIDATION + 'num_episodes',
                 fmt='{:.0f}'),
        ),
        caption=('Imitation: the greedy imitation policy follows each demo '
                 'once from its first state (eq. 2 reward per step). Task: '
                 'the greedy task policy from the same starts for an '
                 'episode. Coordinator counts are summary.json\'s at the '
                 'time limit; the evaluated checkpoint is written when the '
                 'nodes stop, a few seconds later.')),
    # The README's short version.
    Table(
        name='main_job_summary',
        runs=MAIN_JOB_RUNS,
        columns=(_RUN, _IMITATION, _TASK_RETURN, _REACH, _CLOSEST),
        caption='Seeds, budgets and learner steps: docs/results.md.'),
    # docs/fidelity.md: the task policies of the 60-minute runs
    # (MetaMimic, then the baselines D4PG and D4PGfD).
    Table(
        name='final_60min_task_policy',
        runs=('final_60min/armM_seed*', 'final_60min/armD_seed*',
              'final_60min/armE_seed*', 'final_60min/armF_seed*',
              'final_60min_committed/arm*_seed*'),
        columns=(
            _RUN,
            _col('agent', 'summary.baseline', fmt='{}'),
            _col('task learner steps', _COUNTS + 'task_learner_steps',
                 fmt='{:,.0f}'),
            _col('task return, held-out / train starts',
                 _TASK_VALIDATION + 'task_return',
                 _TASK_TRAIN + 'task_return', fmt='{:.2f}'),
            _col("demos' task return, held-out / train",
                 _TASK_VALIDATION + 'demo_task_return',
                 _TASK_TRAIN + 'demo_task_return', fmt='{:.1f}'),
            _col('reach rate, held-out / train',
                 _TASK_VALIDATION + 'reach_rate', _TASK_TRAIN + 'reach_rate',
                 fmt='{:.0%}'),
            _col('lift rate, held-out / train',
                 _TASK_VALIDATION + 'lift_rate', _TASK_TRAIN + 'lift_rate',
                 fmt='{:.0%}'),
            _STACKED,
        ),
        caption=('The greedy task policy of each run\'s final checkpoint, '
                 'one episode from each of the 10 held-out and 10 training '
                 'demos\' start states (`launch/evaluate.py`). Held-out '
                 'rates are fidelity.json\'s.')),
)


# docs/results/fidelity.json (the learning-fidelity issue's record): one
# object per run, from the stored runs matching these globs (directories
# relative to docs/results, in order). Task-policy rates are from the
# held-out demos' start states.
FIDELITY_RUNS = ('final_60min/arm*_seed*', 'final_60min_committed/arm*_seed*',
                 'screen_normalization/arm*_seed*',
                 'screen_feature_scale/arm*_seed*', 'screen_sigma/arm*_seed*',
                 'screen_levers/arm*_seed*', 'screen_cutoff/arm*_seed*',
                 'screen_replay/arm*_seed*', 'screen_replay_ratio/arm*_seed*',
                 'screen_cutoff_schedule/arm*_seed*',
                 'imitation_levers/arm*_seed*',
                 'imitation_levers_60min/arm*_seed*', 'tracker_fed/arm*_seed*',
                 'task_levers/arm*_seed*', 'task_levers_60min/arm*_seed*',
                 'task_levers_60min_s26/arm*_seed*',
                 'task_levers_60min_s27/arm*_seed*',
                 'task_levers_60min_s28/arm*_seed*',
                 'task_levers_60min_s30/arm*_seed*',
                 'task_levers_60min_s32/arm*_seed*',
                 'task_levers_60min_s33/arm*_seed*',
                 'task_levers_45min_s34/arm*_seed*')
FIDELITY_FILE = 'fidelity.json'


@dataclasses.dataclass
class Run:
  """One stored run: its name, directory and parsed JSON files."""
  name: str
  directory: str
  files: Dict[str, dict]

  def value(self, path: str):
    """The field at `path` ('run.label' defaults to the run's name).

    Raises:
      KeyError: the file or the field is absent (message: file and field).
      ResultsError: `path` does not start with a file kind.
    """
    kind, _, field = path.partition('.')
    if kind not in FILES or not field:
      raise ResultsError(f'Column path {path!r}: must be <file>.<field> with '
                         f'file one of {sorted(FILES)}.')
    if path == 'run.label' and 'label' not in self.files.get('run', {}):
      return self.name
    if kind not in self.files:
      raise KeyError(f'{self.filename(path)}: missing (needed for field '
                     f'{field!r})')
    value = self.files[kind]
    for key in field.split('.'):
      if not isinstance(value, dict) or key not in value:
        raise KeyError(f'{self.filename(path)}: no field {field!r}')
      value = value[key]
    return value

  def filename(self, path: str) -> str:
    return os.path.join(self.directory, FILES[path.split('.')[0]])


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      data = json.load(f)
  except json.JSONDecodeError as e:
    raise ResultsError(f'{path}: not valid JSON ({e})') from e
  if not isinstance(data, dict):
    raise ResultsError(f'{path}: a JSON object was expected, got '
                       f'{type(data).__name__}')
  return data


def load_run(results_dir: str, name: str) -> Run:
  """Reads <results_dir>/<name>/{evaluation,summary,run}.json."""
  directory = os.path.join(results_dir, name)
  files = {}
  for kind, filename in FILES.items():
    path = os.path.join(directory, filename)
    if os.path.exists(path):
      files[kind] = _read_json(path)
    elif kind == 'evaluation':
      raise ResultsError(f'{path}: missing (every stored run needs the '
                         'evaluate.py output)')
  return Run(name, directory, files)


def select_runs(results_dir: str, patterns: Sequence[str]) -> List[str]:
  """Run names matching each pattern in turn (globs sorted, no repeats).

  A pattern is relative to `results_dir` and may name a run in a
  subdirectory ('screen_sigma/arm*_seed*'); `*` does not cross a '/'.

  Raises:
    ResultsError: an exact name (no glob characters) is not stored.
  """
  names = []
  for pattern in patterns:
    if any(c in pattern for c in '*?['):
      matched = sorted(  # A '.tmp' directory is a --store that did not finish.
          os.path.relpath(path, results_dir)
          for path in glob.glob(os.path.join(results_dir, pattern))
          if os.path.isdir(path) and not path.endswith('.tmp'))
    elif os.path.isdir(os.path.join(results_dir, pattern)):
      matched = [pattern]
    else:
      raise ResultsError(f'{os.path.join(results_dir, pattern)}: missing '
                         f'(a run named in the table spec)')
    names += [name for name in matched if name not in names]
  return names


def _format(value, fmt: str, run: Run, path: str) -> str:
  if fmt == '{}':
    return str(value)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ResultsError(f'{run.filename(path)}: field '
                       f'{path.partition(".")[2]!r} is {value!r}, not a '
                       'number')
  if math.isnan(value):
    return 'n/a'
  return fmt.format(int(value) if fmt == '{:d}' else value)


def cell(run: Run, column: Column) -> str:
  """The text of one table cell: `column`'s fields of `run`, formatted."""
  parts = []
  for path in column.paths:
    try:
      value = run.value(path)
    except KeyError as e:
      if column.missing is None:
        raise ResultsError(f'{e.args[0]} (column {column.header!r})') from e
      parts.append(column.missing)
      continue
    fmt = '{}' if path == 'run.label' else column.fmt
    parts.append(_format(value, fmt, run, path))
  return ' / '.join(parts)


def render(table: Table, results_dir: str) -> str:
  """The Markdown that goes between the table's markers (no markers)."""
  names = select_runs(results_dir, table.runs)
  source = _display(results_dir)
  if not names:
    # Safe for --check: once rows are committed, removing their runs changes
    # the text.
    return (f'No run in `{source}` matches this table (`{table.name}`: '
            + ', '.join(f'`{pattern}`' for pattern in table.runs) +
            ') yet; `launch/results_tables.py` fills it in.')
  runs = [load_run(results_dir, name) for name in names]
  lines = ['| ' + ' | '.join(c.header for c in table.columns) + ' |',
           '|' + '---|' * len(table.columns)]
  for run in runs:
    lines.append('| ' + ' | '.join(cell(run, c) for c in table.columns) +
                 ' |')
  lines += ['', f'Generated by `launch/results_tables.py` (table '
            f'`{table.name}`) from `{source}/<run>/*.json` for the runs '
            + ', '.join(f'`{name}`' for name in names) + '.']
  if table.caption:
    lines += [table.caption]
  return '\n'.join(lines)


def _display(path: str) -> str:
  relative = os.path.relpath(os.path.abspath(path), ROOT)
  return path if relative.startswith('..') else relative


_MARKER = re.compile(r'^<!-- (/?)results:([A-Za-z0-9_.-]+) -->[ \t]*$',
                     re.MULTILINE)


def update_text(text: str, doc: str, tables: Dict[str, Table],
                results_dir: str) -> Tuple[str, List[str]]:
  """Regenerates every marked table in `text`.

  Returns:
    The new text and the names of the tables whose text changed.
  Raises:
    ResultsError: unpaired markers or an unknown table (naming `doc`).
  """
  out, changed, position = [], [], 0
  matches = list(_MARKER.finditer(text))
  index = 0
  while index < len(matches):
    start = matches[index]
    closing, name = start.group(1), start.group(2)
    line = text.count('\n', 0, start.start()) + 1
    if closing:
      raise ResultsError(f'{doc}:{line}: <!-- /results:{name} --> without '
                         'an opening marker')
    if (index + 1 >= len(matches) or not matches[index + 1].group(1) or
        matches[index + 1].group(2) != name):
      raise ResultsError(f'{doc}:{line}: <!-- results:{name} --> is not '
                         f'followed by <!-- /results:{name} -->')
    if name not in tables:
      raise ResultsError(f'{doc}:{line}: unknown table {name!r} (known: '
                         f'{sorted(tables)})')
    end = matches[index + 1]
    new = '\n' + render(tables[name], results_dir) + '\n'
    if text[start.end():end.start()] != new:
      changed.append(name)
    out += [text[position:start.end()], new]
    position = end.start()
    index += 2
  out.append(text[position:])
  return ''.join(out), changed


def update_docs(docs: Sequence[str], results_dir: str,
                tables: Sequence[Table] = TABLES, check: bool = False,
                root: str = ROOT) -> List[str]:
  """Regenerates (or with `check`, only compares) the tables in `docs`.

  Returns:
    One line per table whose text changed (or, with `check`, is stale).
  """
  by_name = {table.name: table for table in tables}
  if len(by_name) != len(tables):
    raise ResultsError('Two tables in the spec share a name.')
  stale = []
  for doc in docs:
    path = os.path.join(root, doc)
    with open(path) as f:
      text = f.read()
    new, changed = update_text(text, doc, by_name, results_dir)
    stale += [f'{doc}: table {name!r} is out of date' for name in changed]
    if changed and not check:
      with open(path + '.tmp', 'w') as f:
        f.write(new)
      os.replace(path + '.tmp', path)
  return stale


def fidelity_record(run: Run) -> Dict[str, object]:
  """The fields of docs/results/fidelity.json for one stored run.

  The seed is run.json's `seed` (a --store) or the directory name's
  `seed<N>` suffix (a docs/results/screen.sh run). Rates absent from an
  older evaluate.py output are null, and so are the imitation fields of an
  agent without an imitation policy (D4PG, D4PGfD: evaluate.py writes no
  `imitation_*` metrics for them).
  """
  seed = run.files.get('run', {}).get('seed')
  if seed is None:
    match = re.search(r'seed(\d+)$', run.name)
    if not match:
      raise ResultsError(f'{run.directory}: no seed in run.json or the name')
    seed = int(match.group(1))

  def get(path, optional=False):
    try:
      return run.value(path)
    except KeyError as e:
      if optional:
        return None
      raise ResultsError(e.args[0]) from e

  metrics = run.files.get('evaluation', {}).get('metrics', {})
  no_imitation = not any(key.startswith('imitation_') for key in metrics)
  # `evaluate.py --policy=joint_tracker`: the hand-written diagnostic
  # ceiling, not trained and without a task policy.
  tracker = run.files.get('evaluation', {}).get('source', {}).get(
      'kind') == 'joint_tracker'

  def imitation(path):
    return get(path, optional=no_imitation)

  return dict(
      run=run.name,
      agent=('joint_tracker' if tracker else get('summary.baseline') + (
          '_tracker_fed' if run.files['summary'].get('imitation_policy') ==
          'joint_tracker' else '')),
      seed=seed,
      config_overrides=run.files.get('run', {}).get('config_overrides', {}),
      training_seconds=(None if tracker else
                        round(get('summary.elapsed_seconds'), 1)),
      learner_steps=get('evaluation.source.learner_steps'),
      heldout_pct_of_demo_task_reward=imitation(
          _VALIDATION + 'task_return_pct_of_demo'),
      train_pct_of_demo_task_reward=imitation(
          _TRAIN + 'task_return_pct_of_demo'),
      heldout_imitation_reward_per_step=imitation(
          _VALIDATION + 'imitation_reward_per_step'),
      train_imitation_reward_per_step=imitation(
          _TRAIN + 'imitation_reward_per_step'),
      task_policy_reach_rate=get(_TASK_VALIDATION + 'reach_rate',
                                 optional=tracker),
      task_policy_lift_rate=get(_TASK_VALIDATION + 'lift_rate',
                                optional=True),
      task_policy_success_rate=get(_TASK_VALIDATION + 'success_rate',
                                   optional=tracker))


def fidelity_text(results_dir: str,
                  patterns: Sequence[str] = FIDELITY_RUNS) -> str:
  """docs/results/fidelity.json's text: a JSON list, one object per run."""
  names = select_runs(results_dir, patterns)
  records = [fidelity_record(load_run(results_dir, name)) for name in names]
  return json.dumps(records, indent=1) + '\n'


def update_fidelity(results_dir: str, check: bool = False,
                    patterns: Sequence[str] = FIDELITY_RUNS) -> List[str]:
  """Rewrites (or with `check`, compares) <results_dir>/fidelity.json.

  Nothing is written where no run matches and there is no file yet.
  """
  path = os.path.join(results_dir, FIDELITY_FILE)
  text = fidelity_text(results_dir, patterns)
  old = None
  if os.path.exists(path):
    with open(path) as f:
      old = f.read()
  if old == text or (old is None and text == '[]\n'):
    return []
  if not check:
    with open(path + '.tmp', 'w') as f:
      f.write(text)
    os.replace(path + '.tmp', path)
  return [f'{_display(path)} is out of date']


def _copy_small_json(source: str, destination: str, required_key: str):
  size = os.path.getsize(source)
  if size > MAX_FILE_BYTES:
    raise ResultsError(f'{source}: {size:,} bytes, over the '
                       f'{MAX_FILE_BYTES:,}-byte limit for a stored result '
                       '(store the JSON summaries only)')
  if required_key not in _read_json(source):
    raise ResultsError(f'{source}: no field {required_key!r}; is it the '
                       'right file?')
  shutil.copyfile(source, destination)


def store_run(name: str, workdir: Optional[str] = None,
              evaluation: Optional[str] = None,
              command: Optional[str] = None, seed: Optional[int] = None,
              max_seconds: Optional[float] = None,
              label: Optional[str] = None, notes: Optional[str] = None,
              results_dir: str = RESULTS_DIR,
              overwrite: bool = False) -> str:
  """Copies a run's small JSON files into <results_dir>/<name>/.

  Args:
    name: run name (a directory name; the tables select runs by it).
    workdir: run_local workdir: its summary.json, and its evaluation.json
      unless `evaluation` is given.
    evaluation: the `evaluate.py --output` file (for an untrained
      evaluation, which has no workdir).
    command, seed, max_seconds, label, notes: written to run.json.
    results_dir: where stored runs live.
    overwrite: replace an existing stored run of this name.

  Returns:
    The run's directory.
  Raises:
    ResultsError: a file is missing, too large or not the expected JSON, or
      the run exists and `overwrite` is False.
  """
  if not re.fullmatch(r'[A-Za-z0-9_.-]+', name) or name.startswith('.'):
    raise ResultsError(f'Run name {name!r}: use letters, digits, "_", "-" '
                       'and "." only.')
  if evaluation is None:
    if workdir is None:
      raise ResultsError('Give a workdir or an evaluation file to store.')
    evaluation = os.path.join(workdir, EVALUATION_FILE)
  if not os.path.exists(evaluation):
    raise ResultsError(f'{evaluation}: missing (run launch/evaluate.py '
                       f'--output={evaluation} first)')
  summary = os.path.join(workdir, SUMMARY_FILE) if workdir else None
  if summary and not os.path.exists(summary):
    raise ResultsError(f'{summary}: missing (the run did not finish?)')
  directory = os.path.join(results_dir, name)
  if os.path.exists(directory):
    if not overwrite:
      raise ResultsError(f'{directory} exists; pass overwrite (--overwrite) '
                         'to replace it.')
    shutil.rmtree(directory)
  staging = directory + '.tmp'
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(staging)
  try:
    _copy_small_json(evaluation, os.path.join(staging, EVALUATION_FILE),
                     'metrics')
    if summary:
      _copy_small_json(summary, os.path.join(staging, SUMMARY_FILE), 'counts')
    run = dict(name=name, command=command, seed=seed, max_seconds=max_seconds,
               label=label, notes=notes,
               stored=datetime.datetime.now(datetime.timezone.utc).strftime(
                   '%Y-%m-%d %H:%M UTC'))
    with open(os.path.join(staging, RUN_FILE), 'w') as f:
      json.dump({k: v for k, v in run.items() if v is not None}, f,
                indent=2, sort_keys=True)
      f.write('\n')
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  os.replace(staging, directory)
  return directory


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  results_dir = os.path.abspath(_RESULTS_DIR.value)
  try:
    if _STORE.value is not None or _EVALUATION.value:
      if not _NAME.value:
        raise app.UsageError('--store/--evaluation need --name.')
      directory = store_run(
          _NAME.value, workdir=_STORE.value or None,
          evaluation=_EVALUATION.value, command=_COMMAND.value,
          seed=_SEED.value, max_seconds=_MAX_SECONDS.value,
          label=_LABEL.value, notes=_NOTES.value, results_dir=results_dir,
          overwrite=_OVERWRITE.value)
      print(f'[results] stored {directory}')
    stale = update_docs(_DOCS.value, results_dir, check=_CHECK.value)
    stale += update_fidelity(results_dir, check=_CHECK.value)
  except ResultsError as e:
    print(f'[results] error: {e}', file=sys.stderr)
    sys.exit(2)
  if _CHECK.value:
    for line in stale:
      print(f'[results] {line}; run python launch/results_tables.py',
            file=sys.stderr)
    sys.exit(1 if stale else 0)
  for line in stale:
    print(f'[results] {line.replace("is out of date", "regenerated")}')
  if not stale:
    print('[results] every table is up to date')


if __name__ == '__main__':
  app.run(main)
