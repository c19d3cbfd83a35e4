"""The real Launchpad program on local_mp: data flow, resume, kills.

Each test runs `launch/run_local.py` (the README's main job) as a subprocess
with 1 imitation actor and 1 task actor, so 8 node processes.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from acme_metamimic import config as config_lib
from acme_metamimic.demonstrations import recording

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRESS = re.compile(r'\[metamimic\]\s+\d+s\s+imitation learner steps (\d+)'
                      r'.*imitation actor steps (\d+).*replay imitation (\d+) '
                      r'task (\d+)')


def _progress(text):
  """The coordinator's progress rows in `text`: (imitation learner steps,
  imitation table size, task table size, imitation actor steps)."""
  return [tuple(int(m.group(i)) for i in (1, 3, 4, 2))
          for m in PROGRESS.finditer(text)]


@pytest.fixture(scope='module')
def demo_dirs(tmp_path_factory):
  root = tmp_path_factory.mktemp('demos')
  paths = {'A': str(root / 'train'), 'B': str(root / 'validation')}
  recording.record_demonstrations('A', 3, 'features', 0, paths['A'],
                                  progress=False)
  recording.record_demonstrations('B', 2, 'features', 1, paths['B'],
                                  progress=False)
  return paths


def _command(workdir, demo_dirs, *flags):
  return [sys.executable, os.path.join(ROOT, 'launch', 'run_local.py'),
          f'--workdir={workdir}', f'--demos={demo_dirs["A"]}',
          f'--validation_demos={demo_dirs["B"]}', '--num_imitation_actors=1',
          '--num_task_actors=1', '--make_demos=false', *flags]


def _run(workdir, demo_dirs, *flags, timeout=420):
  result = subprocess.run(_command(workdir, demo_dirs, *flags), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
  output = result.stdout + result.stderr
  assert result.returncode == 0, output[-5000:]
  with open(os.path.join(workdir, 'summary.json')) as f:
    return json.load(f), output


def _log_rows(workdir, label):
  path = os.path.join(workdir, 'logs', label, 'logs.csv')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.read().splitlines()
  if not lines:
    return []
  header = lines[0].split(',')
  return [dict(zip(header, line.split(','))) for line in lines[1:]]


# The runs here do not compile the learners with XLA: compiling costs about
# 10 s per learner. The launched program with XLA (the launchers' default)
# runs in tests/multihost_test.py, and the XLA step itself is checked against
# Acme's in tests/learning_test.py.

# The first run ends on imitation learner steps, not on time: on a slow
# machine a fixed 75 s left only 20 learner steps after the actor was killed
# (CI, d13f543).
_STEPS_TO_END = 120


def _node_output(workdir, group, lines=40):
  """The last lines a group's nodes printed (for failure messages)."""
  path = os.path.join(workdir, 'logs', 'console.log')
  if not os.path.exists(path):
    return ''
  with open(path, errors='replace') as f:
    mine = [line for line in f if f'[{group}/' in line]
  return ''.join(mine[-lines:])


def test_program_survives_every_kill_and_resumes(tmp_path, demo_dirs):
  """Kills: an actor, the launcher, the replay node, then the whole tree.

  1. Its only imitation actor is killed mid-run: learning goes on (the
     learner samples what replay holds) and the program still ends cleanly
     on its step limit.
  2. A rerun in the same workdir restores counts and replay before any new
     step; once it has stepped and its evaluator has logged every kind, its
     launcher gets SIGKILL, and every node ends by itself within 10 s.
  3. A third run resumes from what the nodes checkpointed as they stopped;
     once it has stepped, its replay node gets SIGKILL: the launcher stops
     the program within 30 s and exits 1, naming the node and the workdir.
  4. Five more runs, each killed whole (launcher and every node at once) at
     another moment, three of them in checkpoint writes, and a last run that
     ends cleanly: every one resumes with counts and replay that never go
     backwards (`_whole_tree_kills`).
  One test, because each local_mp run costs node start-up on 2 cores.
  """
  workdir = str(tmp_path / 'run')
  # --learner_gpu=on: without a GPU the learners run on the CPU all the same,
  # and the nodes' environments show what a GPU host would give them.
  with _Launched(tmp_path / 'launcher.log', _command(
      workdir, demo_dirs, f'--max_learner_steps={_STEPS_TO_END}',
      '--max_seconds=400', '--learner_gpu=on', '--nojit_compile')) as run:
    deadline = time.time() + 300
    while time.time() < deadline:
      rows = _log_rows(workdir, 'imitation_learner')
      if rows and float(rows[-1]['imitation_learner_steps']) > 0:
        break
      time.sleep(2)
    for title in ('imitation_learner/0', 'task_learner/0', 'replay/0',
                  'counter/0', 'coordinator/0', 'imitation_actor/0',
                  'task_actor/0', 'evaluator/0'):
      environment = _node_process(run.launcher.pid, title).environ()
      if 'learner' in title:  # May use the host's GPUs, and share one.
        assert environment.get('CUDA_VISIBLE_DEVICES') == os.environ.get(
            'CUDA_VISIBLE_DEVICES'), title
        assert environment['TF_FORCE_GPU_ALLOW_GROWTH'] == 'true', title
      else:
        assert environment['CUDA_VISIBLE_DEVICES'] == '', title
    victim = _node_process(run.launcher.pid, 'imitation_actor/0')
    assert victim is not None
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    steps_at_kill = float(_log_rows(workdir, 'imitation_learner')[-1][
        'imitation_learner_steps'])
    assert steps_at_kill + 40 <= _STEPS_TO_END, (
        f'the learner was already at {steps_at_kill} steps when the actor was '
        'killed; raise _STEPS_TO_END')
    run.launcher.wait(timeout=420)
  output = run.output
  assert run.launcher.returncode == 0, output[-5000:]
  with open(os.path.join(workdir, 'summary.json')) as f:
    summary = json.load(f)
  counts = summary['counts']
  # Ended by the step limit, once both learners reached it (400 s would mean
  # that learning stalled).
  for key in ('imitation_learner_steps', 'task_learner_steps'):
    assert counts.get(key, 0) >= _STEPS_TO_END, (
        f'{key}: {counts}\n{output[-3000:]}\n' +
        _node_output(workdir, key.replace('_steps', '')))
  assert counts['imitation_actor_steps'] > 0
  assert counts['task_actor_steps'] > 0
  sizes = summary['table_sizes']
  # The task table holds imitation *and* task experience.
  assert sizes['task'] > sizes['imitation'] > 0
  assert '=== MetaMimic summary ===' in output
  # The launcher says so, once, and of that node alone.
  assert re.search(r'Node imitation_actor\S* \(pid \d+\) ended unexpectedly; '
                   'the run goes on without it', output), output[-3000:]
  assert output.count('the run goes on without it') == 1, output[-3000:]
  # The killed actor's CPU time went with it: it has no share.
  assert 'imitation_actor' not in summary['cpu_seconds'], summary['cpu_seconds']
  assert re.search(r'^CPU by node group +\w+ \d+ %', output, re.MULTILINE)
  assert re.search(r'^learner steps/s +imitation \d+\.\d, task \d+\.\d',
                   output, re.MULTILINE), output[-3000:]
  first_steps = counts['imitation_learner_steps']

  # The rerun resumes; then its launcher is killed with SIGKILL, and every
  # node must end by itself (they watch the launcher) within 10 s.
  with _Launched(tmp_path / 'launcher2.log', _command(
      workdir, demo_dirs, f'--max_learner_steps={first_steps + 10**6}',
      '--max_seconds=400', '--nojit_compile')) as run:
    progress = run.wait_for_progress(lambda p: p[-1][0] > first_steps)
    # The first run can end on its step limit before the evaluator's first
    # round reaches the task episode (CI, 112192e): this run ends when the
    # test kills it, so it waits for every kind's first row.
    evaluator_rows = _wait_for_evaluator_rows(workdir)
    nodes = _node_processes(run.launcher.pid)
    assert len(nodes) == 8, nodes
    run.launcher.kill()
    run.launcher.wait(10)
    killed_at = time.time()
    _, alive = psutil.wait_procs(nodes, timeout=10)
    nodes_ended_after = time.time() - killed_at
  output = run.output
  assert not alive, (alive, output[-3000:])
  for kind, rows in evaluator_rows.items():
    # The columns are fixed at the first row, logged before any learner
    # step: it still holds the learner's count (report.py's x axis).
    learner = ('task_learner_steps' if kind == 'task'
               else 'imitation_learner_steps')
    assert learner in rows[0], (kind, rows[0])
  restored_steps, restored_imitation, restored_task, _ = progress[0]
  # Counts and replay came back before any new actor or learner step.
  assert restored_steps >= first_steps, progress[:3]
  assert restored_imitation >= 0.9 * sizes['imitation'], progress[:3]
  assert restored_task >= 0.9 * sizes['task'], progress[:3]
  steps_at_kill = progress[-1][0]

  # The run after the SIGKILL resumes from what the nodes checkpointed as
  # they stopped; once its actors have stepped, its replay node gets
  # SIGKILL, and the launcher must stop the program and exit non-zero,
  # naming the node and the workdir.
  progress, output, returncode, ended_after = _run_and_kill(
      tmp_path / 'launcher3.log', 'replay/0',
      _command(workdir, demo_dirs, f'--max_learner_steps={10**6}',
               '--max_seconds=400', '--nojit_compile'),
      lambda progress: progress[-1][3] > progress[0][3])
  assert progress[0][0] >= steps_at_kill, (steps_at_kill, progress[:3])
  assert progress[0][1] >= 0.9 * sizes['imitation'], progress[:3]
  assert returncode == 1, output[-3000:]
  # (A learner whose replay vanished may die too before the launcher looks.)
  assert re.search(r'Node [a-z_, ]*\breplay\b[a-z_, ]* ended unexpectedly, so '
                   r'the program was '
                   rf'stopped\. {re.escape(workdir)} keeps the last complete '
                   'checkpoints', output), output[-3000:]
  assert ended_after < 60, ended_after
  assert '=== MetaMimic summary ===' not in output
  steps_at_replay_kill = progress[-1][0]

  # Five SIGKILLs of the whole process tree, each at another moment, then a
  # run that ends cleanly (_whole_tree_kills).
  # (Replay came back from its last complete checkpoint, not from what the
  # killed node last held: only the steps are a lower bound here.)
  restored, final = _whole_tree_kills(tmp_path, workdir, demo_dirs,
                                      (steps_at_replay_kill, 0, 0, 0))
  # The learners checkpointed when the launcher stopped them after the replay
  # node's kill; replay came back from its last complete checkpoint.
  assert restored[0][1] >= 0.9 * sizes['imitation'], restored
  assert final['counts']['imitation_learner_steps'] >= restored[-1][0]
  # The summary's rates count this launch's steps only: from what the
  # coordinator's first row showed, the counts restored from checkpoint.
  assert (final['counts_at_start']['imitation_learner_steps'] ==
          restored[-1][0]), (final['counts_at_start'], restored[-1])
  assert final['table_sizes']['imitation'] >= restored[-1][1]
  print(f'nodes ended {nodes_ended_after:.1f} s after the launcher was killed; '
        f'the launcher ended {ended_after:.1f} s after the replay node was')


# Checkpoints every 6 s in the runs that are killed whole, so that a kill
# can land in a write, and a run of half a minute spans several periods.
_KILL_CHECKPOINT_MINUTES = 0.1
_KILL_CHECKPOINT_SECONDS = 60 * _KILL_CHECKPOINT_MINUTES
# A checkpoint period is measured from the end of the last write, and the
# test sees a progress row up to its 2 s poll after the coordinator prints it.
_LOSS_SLACK_SECONDS = 6


def _whole_tree_kills(tmp_path, workdir, demo_dirs, at_least):
  """SIGKILLs every process of the program at once, at five moments.

  Each run resumes the one before; it is killed, launcher and every node in
  the same instant, when:
    1. all its node processes have started (they import and restore);
    2. the replay node is writing a checkpoint (a replay checkpoint
       directory without its DONE marker);
    3. the counter node is writing a checkpoint (TF's `*_temp` directory, or
       a checkpoint file that the `checkpoint` state file does not name);
    4. the learners write their stop checkpoints after SIGTERM to the
       launcher (as a scheduler stops a job);
    5. the same after a Ctrl+C (SIGINT to the launcher's process group, as a
       terminal sends it).
  A sixth run ends by itself. After every kill the next run must restore (a
  partial checkpoint would be refused, or fail the node), and each run's
  first progress row must show counts and replay sizes that never go
  backwards and lose at most one checkpoint period: at least what a row
  showed a period (plus slack) before the last kill. The replay write
  (about 0.6 s) must be caught in the act; a learner's write takes 10-20 ms,
  so at least one of 4 and 5 must leave a partial learner checkpoint on disk.
  Runs 1-3 are killed before their first row where they can be: each run
  costs node start-up.

  Returns (the first progress row of each run that showed one, the last
  run's summary).
  """
  moments = (
      ('start-up', None, None),
      ('replay checkpoint write', None, 'replay/'),
      ('counter checkpoint write', None, 'checkpoints/counter/'),
      ('SIGTERM, stop checkpoints', signal.SIGTERM, '_learner/'),
      ('Ctrl+C, stop checkpoints', signal.SIGINT, '_learner/'),
  )
  restored = []
  caught = {}
  previous = at_least
  console_log = os.path.join(workdir, 'logs', 'console.log')
  for number, (moment, stop_signal, writing) in enumerate(moments, start=1):
    before = _partial_writes(workdir)
    console_start = os.path.getsize(console_log)
    command = _command(workdir, demo_dirs, '--max_learner_steps=1000000',
                       '--max_seconds=400', '--nojit_compile',
                       f'--checkpoint_minutes={_KILL_CHECKPOINT_MINUTES}')
    with _Launched(tmp_path / f'killed{number}.log', command,
                   new_session=True) as run:
      if writing is None:
        _wait_for_nodes(run.launcher.pid)
      if stop_signal is not None:
        # Every node in its run loop, so that the learners checkpoint on
        # stop and the actors stop at once.
        _wait_for_nodes_running(console_log, console_start)
        if stop_signal == signal.SIGINT:
          os.killpg(run.launcher.pid, signal.SIGINT)
        else:
          run.launcher.send_signal(stop_signal)
      seen = []
      if writing is not None:
        deadline = time.time() + 90
        read_at = 0
        while not seen and time.time() < deadline:
          seen = [p for p in _partial_writes(workdir) - before if writing in p]
          if time.time() > read_at + 0.5:  # When each row was first seen.
            run.timed_progress()
            read_at = time.time()
          time.sleep(0.002)
      # The launcher runs in a session of its own, and its nodes, their
      # wrappers and their sed in its process group: one kill -9 of the
      # group is the whole tree at once. (Each node's launcher watcher has a
      # session of its own; it ends once the launcher is gone.)
      os.killpg(run.launcher.pid, signal.SIGKILL)
      killed_at = time.time()
      deadline = killed_at + 10
      while _group(run.launcher.pid) and time.time() < deadline:
        time.sleep(0.2)
      assert not _group(run.launcher.pid), (moment, _group(run.launcher.pid))
      rows = run.timed_progress()
    caught[moment] = sorted(
        p for p in _partial_writes(workdir) - before
        if writing is not None and writing in p)
    if stop_signal is not None:
      name = signal.Signals(stop_signal).name
      assert f'[metamimic] {name}: stopping the nodes' in run.output, (
          run.output[-3000:])
    if rows:
      _check_resumed(moment, rows[0][1], previous)
      restored.append(rows[0][1])
      # What every later run must restore at least: the last row shown a
      # checkpoint period before the kill, else what this run restored
      # (counts and sizes only grow within a run).
      old = [row for seen_at, row in rows
             if seen_at <= killed_at - _KILL_CHECKPOINT_SECONDS -
             _LOSS_SLACK_SECONDS]
      previous = old[-1] if old else rows[0][1]
  assert caught['replay checkpoint write'], caught
  assert caught[moments[3][0]] or caught[moments[4][0]], caught

  summary, output = _run(workdir, demo_dirs, '--max_seconds=10',
                         '--nojit_compile')
  progress = _progress(output)
  assert progress, output[-3000:]
  _check_resumed('the final run', progress[0], previous)
  restored.append(progress[0])
  print('whole-tree kills caught these writes in progress: ' +
        '; '.join(f'{m}: {", ".join(caught[m]) or "-"}' for m, *_ in moments))
  return restored, summary


def _wait_for_evaluator_rows(workdir, seconds=300):
  """Each evaluator kind's log rows, once every kind has logged one."""
  kinds = ('imitation_validation', 'imitation_train', 'task')
  deadline = time.time() + seconds
  while True:
    rows = {kind: _log_rows(workdir, f'evaluator_{kind}') for kind in kinds}
    if all(rows.values()):
      return rows
    assert time.time() < deadline, (
        f'no evaluator rows in {seconds} s: ' +
        ', '.join(kind for kind in kinds if not rows[kind]))
    time.sleep(2)


def _wait_for_nodes(launcher_pid, count=8, seconds=120):
  """Until the launcher has started all `count` node processes."""
  deadline = time.time() + seconds
  while len(_node_processes(launcher_pid)) < count:
    assert time.time() < deadline, f'not {count} nodes in {seconds} s'
    time.sleep(0.2)


# Courier nodes log Launchpad's 'Binding: run' as they enter their run loop.
_RUNNING = {
    group: re.compile(rf'\[{group}/0\] .*Binding: run(?!_)')
    for group in ('imitation_learner', 'task_learner', 'imitation_actor',
                  'task_actor', 'evaluator', 'coordinator')}


def _wait_for_nodes_running(console_log, start, seconds=120):
  """Until every courier node entered its run loop.

  A node stopped while it still starts may ignore SIGTERM, and the launcher
  then waits its 20 s of grace (`run_local.stop_nodes`).
  """
  deadline = time.time() + seconds
  while time.time() < deadline:
    with open(console_log, errors='replace') as f:
      f.seek(start)
      text = f.read()
    if all(pattern.search(text) for pattern in _RUNNING.values()):
      return
    time.sleep(0.5)
  raise AssertionError(f'the nodes did not start in {seconds} s')


def _check_resumed(moment, row, previous):
  """The run after `moment`'s kill restored at least `previous`."""
  assert all(now >= then for now, then in zip(row, previous)), (
      moment, row, previous)


_CHECKPOINT_NAME = re.compile(r'(ckpt-\d+)\.')


def _partial_writes(workdir):
  """Files and directories of checkpoint writes that have not completed.

  A replay checkpoint directory without its DONE marker; in a TF checkpoint
  directory, a `*_temp` directory (the shards before they are merged) or a
  checkpoint that the `checkpoint` state file does not name (written but not
  yet recorded, or recorded as replaced but not yet deleted).
  """
  partial = set()
  replay = os.path.join(workdir, 'replay')
  for name in _listdir(replay):
    if not os.path.exists(os.path.join(replay, name, 'DONE')):
      partial.add(f'replay/{name}')
  checkpoints = os.path.join(workdir, 'checkpoints')
  for kind in _listdir(checkpoints):
    directory = os.path.join(checkpoints, kind)
    names = _listdir(directory)
    try:
      with open(os.path.join(directory, 'checkpoint')) as f:
        state = f.readline()
    except OSError:
      state = ''
    for name in names:
      match = _CHECKPOINT_NAME.match(name)
      if '_temp' in name or (match and f'"{match.group(1)}"' not in state):
        partial.add(f'checkpoints/{kind}/{name}')
  return partial


def _listdir(path):
  try:
    return os.listdir(path)
  except OSError:
    return []


def _group(pgid):
  """The live processes (not zombies) of process group `pgid`."""
  members = []
  for process in psutil.process_iter():
    try:
      if (os.getpgid(process.pid) == pgid and
          process.status() != psutil.STATUS_ZOMBIE):
        members.append(process)
    except (ProcessLookupError, psutil.NoSuchProcess):
      continue
  return members


class _Launched:
  """A launcher run in the background, its output in a file, killed on exit.

  A file, not a pipe: nobody reads a pipe while the test polls, and nodes
  writing to a full pipe would block.
  """

  def __init__(self, log_path, command, new_session=False):
    self._log_path = log_path
    self._command = command
    self._new_session = new_session
    self._seen_at = {}
    self.output = ''

  def __enter__(self):
    self._log = open(self._log_path, 'w+')
    # In a session of its own, the launcher's process group is what a
    # terminal's Ctrl+C reaches.
    self.launcher = subprocess.Popen(self._command, cwd=ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=self._new_session)
    return self

  def progress(self):
    return [row for _, row in self.timed_progress()]

  def timed_progress(self):
    """(when this test first saw it, row) for each progress row so far."""
    self._log.seek(0)
    rows = _progress(self._log.read())
    now = time.time()
    for i in range(len(rows)):
      self._seen_at.setdefault(i, now)
    return [(self._seen_at[i], row) for i, row in enumerate(rows)]

  def wait_for_progress(self, ready, seconds=300):
    """The progress rows once `ready(rows)` holds (fails after `seconds`)."""
    deadline = time.time() + seconds
    rows = []
    while time.time() < deadline and not (rows and ready(rows)):
      time.sleep(2)
      rows = self.progress()
    assert rows and ready(rows), rows
    return rows

  def __exit__(self, *unused_exc_info):
    if self.launcher.poll() is None:
      _kill_tree(self.launcher)
    self._log.seek(0)
    self.output = self._log.read()
    self._log.close()


def _run_and_kill(log_path, title, command, ready):
  """Runs `command`, SIGKILLs node `title` once `ready(progress)`.

  Returns (progress, output, launcher exit code, seconds from the kill to the
  launcher's end).
  """
  with _Launched(log_path, command) as run:
    progress = run.wait_for_progress(ready)
    victim = _node_process(run.launcher.pid, title)
    assert victim is not None, title
    victim.kill()
    killed_at = time.time()
    run.launcher.wait(120)
    ended_after = time.time() - killed_at
  return progress, run.output, run.launcher.returncode, ended_after


def test_d4pgfd_baseline_runs_task_nodes_only_and_inserts_demos_once(
    tmp_path, demo_dirs):
  workdir = str(tmp_path / 'd4pgfd')
  # Trains on the first 2 of the 3 demos (--max_train_demos).
  summary, output = _run(workdir, demo_dirs, '--baseline=d4pgfd',
                         '--nojit_compile',
                         '--max_learner_steps=20', '--max_seconds=300',
                         '--max_train_demos=2')
  assert 'training on the first 2 of 3 demos' in output
  # The console shows progress and notices; node output is in the workdir.
  assert 'Gym has been unmaintained' not in output
  assert not re.search(r'^(\[\w+/\d+\] )?I\d{4} ', output, re.MULTILINE)
  with open(os.path.join(workdir, 'logs', 'console.log')) as f:
    node_output = f.read()
  assert re.search(r'\[task_learner/0\] I\d{4} ', node_output)
  assert output.rstrip().splitlines()[-1].startswith('summary ')
  assert summary['baseline'] == 'd4pgfd'
  # Where the CPU went, by node group, read before the nodes stopped.
  cpu = summary['cpu_seconds']
  assert set(cpu) == {'replay', 'counter', 'coordinator', 'task_learner',
                      'task_actor', 'evaluator', 'launcher'}, cpu
  assert all(seconds > 0 for seconds in cpu.values()), cpu
  assert cpu['task_learner'] > cpu['counter'], cpu
  assert re.search(r'^CPU by node group +\w+ \d+ %', output,
                   re.MULTILINE), output[-3000:]
  counts = summary['counts']
  # The coordinator stops on task learner steps; no imitation node ran.
  assert counts['task_learner_steps'] >= 20
  assert counts['task_actor_steps'] > 0
  assert not any(k.startswith('imitation') for k in counts), counts
  with open(os.path.join(workdir, 'demo_transitions_inserted.json')) as f:
    demo_steps = json.load(f)['demo_steps']
  # metadata's episode_lengths count frames: T + 1 for T demo steps.
  with open(os.path.join(demo_dirs['A'], 'metadata.json')) as f:
    lengths = json.load(f)['episode_lengths']
  assert demo_steps == sum(length - 1 for length in lengths[:2])
  assert output.count('demo steps written to the demo table') == 1
  # The demos have a table of their own (T + n_step - 1 items per demo), which
  # the task actors' FIFO table cannot evict them from.
  demo_items = demo_steps + 2 * (config_lib.features_config().n_step - 1)
  sizes = summary['table_sizes']
  assert sizes['imitation'] == 0
  assert sizes['demo'] == demo_items
  assert sizes['task'] > 0
  assert _log_rows(workdir, 'evaluator_task')
  assert not os.path.exists(os.path.join(workdir, 'logs',
                                         'evaluator_imitation_validation'))

  summary, output = _run(workdir, demo_dirs, '--baseline=d4pgfd',
                         '--nojit_compile',
                         '--max_learner_steps=30', '--max_seconds=300',
                         '--max_train_demos=2', '--evaluate')
  assert 'demo steps written to the demo table' not in output
  assert summary['counts']['task_learner_steps'] >= 30
  # Restored from the replay checkpoint, every demo item and none inserted
  # again.
  assert summary['table_sizes']['demo'] == demo_items
  # --evaluate: every held-out demo, and the training demos trained on only.
  assert f'the first 2 demos of {demo_dirs["A"]}' in output
  with open(os.path.join(workdir, 'evaluation.json')) as f:
    evaluated = json.load(f)
  assert evaluated['demos']['train']['evaluated'] == 2
  assert evaluated['demos']['validation']['evaluated'] == 2
  assert re.search(r'^task policy, training starts .* of 2$', output,
                   re.MULTILINE), output[-3000:]


def _node_process(root_pid, title):
  for process in psutil.Process(root_pid).children(recursive=True):
    try:
      if title in ' '.join(process.parent().cmdline()) and (
          'process_entry.py' in ' '.join(process.cmdline())):
        return process
    except psutil.NoSuchProcess:
      continue
  return None


def _node_processes(root_pid):
  nodes = []
  for process in psutil.Process(root_pid).children(recursive=True):
    try:
      command = process.cmdline()
      if 'process_entry.py' in ' '.join(command) and not any(
          part.endswith('decorate_output') for part in command[:2]):
        nodes.append(process)
    except psutil.NoSuchProcess:
      continue
  return nodes


def _kill_tree(process):
  try:
    children = psutil.Process(process.pid).children(recursive=True)
  except psutil.NoSuchProcess:
    children = []
  for child in children:
    try:
      child.kill()
    except psutil.NoSuchProcess:
      pass
  process.kill()
