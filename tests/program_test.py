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

from acme_metamimic.demonstrations import recording

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRESS = re.compile(r'\[metamimic\]\s+\d+s\s+imitation learner steps (\d+)'
                      r'.*replay imitation (\d+) task (\d+)')


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


# Only the first run below compiles the learners with XLA (run_local's
# default): compiling costs about 10 s per learner, and the XLA step itself is
# checked against Acme's in tests/learning_test.py.

# The first run ends on imitation learner steps, not on time: on a slow
# machine a fixed 75 s left only 20 learner steps after the actor was killed
# (CI, d13f543).
_STEPS_TO_END = 120


def test_program_survives_killed_actor_and_launcher_then_resumes(
    tmp_path, demo_dirs):
  """Kills: an actor, then the launcher; each rerun resumes.

  1. Its only imitation actor is killed mid-run: learning goes on (the
     learner samples what replay holds) and the program still ends cleanly
     on its step limit.
  2. A rerun in the same workdir restores counts and replay before any new
     step; once it has stepped, its launcher gets SIGKILL, and every node
     ends by itself within 10 s.
  3. A third run resumes from what the nodes checkpointed as they stopped;
     once it has stepped, its replay node gets SIGKILL: the launcher stops
     the program within 30 s and exits 1, naming the node and the workdir.
  4. A fourth run resumes: learner steps from the checkpoints the learners
     wrote as they were stopped, replay from its last complete checkpoint.
  One test, because each local_mp run costs node start-up on 2 cores.
  """
  workdir = str(tmp_path / 'run')
  # --learner_gpu=on: without a GPU the learners run on the CPU all the same,
  # and the nodes' environments show what a GPU host would give them.
  with _Launched(tmp_path / 'launcher.log', _command(
      workdir, demo_dirs, f'--max_learner_steps={_STEPS_TO_END}',
      '--max_seconds=400', '--learner_gpu=on')) as run:
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
  # Ended by the step limit (400 s would mean that learning stalled).
  assert counts['imitation_learner_steps'] >= _STEPS_TO_END
  assert counts['task_learner_steps'] > 0
  assert counts['imitation_actor_steps'] > 0
  assert counts['task_actor_steps'] > 0
  sizes = summary['table_sizes']
  # The task table holds imitation *and* task experience.
  assert sizes['task'] > sizes['imitation'] > 0
  for kind in ('imitation_validation', 'imitation_train', 'task'):
    assert _log_rows(workdir, f'evaluator_{kind}'), kind
  assert '=== MetaMimic summary ===' in output
  first_steps = counts['imitation_learner_steps']

  # The rerun resumes; then its launcher is killed with SIGKILL, and every
  # node must end by itself (they watch the launcher) within 10 s.
  with _Launched(tmp_path / 'launcher2.log', _command(
      workdir, demo_dirs, f'--max_learner_steps={first_steps + 10**6}',
      '--max_seconds=400', '--nojit_compile')) as run:
    progress = run.wait_for_progress(lambda p: p[-1][0] > first_steps)
    nodes = _node_processes(run.launcher.pid)
    assert len(nodes) == 8, nodes
    run.launcher.kill()
    run.launcher.wait(10)
    killed_at = time.time()
    _, alive = psutil.wait_procs(nodes, timeout=10)
    nodes_ended_after = time.time() - killed_at
  output = run.output
  assert not alive, (alive, output[-3000:])
  restored_steps, restored_imitation, restored_task = progress[0]
  # Counts and replay came back before any new actor or learner step.
  assert restored_steps >= first_steps, progress[:3]
  assert restored_imitation >= 0.9 * sizes['imitation'], progress[:3]
  assert restored_task >= 0.9 * sizes['task'], progress[:3]
  steps_at_kill = progress[-1][0]

  # The run after the SIGKILL resumes from what the nodes checkpointed as
  # they stopped; once it has stepped, its replay node gets SIGKILL, and the
  # launcher must stop the program and exit non-zero, naming the node and
  # the workdir.
  progress, output, returncode, ended_after = _run_and_kill(
      tmp_path / 'launcher3.log', 'replay/0',
      _command(workdir, demo_dirs, f'--max_learner_steps={10**6}',
               '--max_seconds=400', '--nojit_compile'),
      lambda progress: progress[-1][0] > steps_at_kill)
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

  # The learners checkpointed when the launcher stopped them; replay comes
  # back from its last complete checkpoint.
  summary, output = _run(workdir, demo_dirs,
                         f'--max_learner_steps={steps_at_replay_kill + 10}',
                         '--max_seconds=300', '--nojit_compile')
  progress = [tuple(map(int, m.groups())) for m in PROGRESS.finditer(output)]
  assert progress, output[-3000:]
  assert progress[0][0] >= steps_at_replay_kill, progress[:3]
  assert progress[0][1] >= 0.9 * sizes['imitation'], progress[:3]
  assert summary['counts']['imitation_learner_steps'] >= (
      steps_at_replay_kill + 10)
  print(f'nodes ended {nodes_ended_after:.1f} s after the launcher was killed; '
        f'the launcher ended {ended_after:.1f} s after the replay node was')


class _Launched:
  """A launcher run in the background, its output in a file, killed on exit.

  A file, not a pipe: nobody reads a pipe while the test polls, and nodes
  writing to a full pipe would block.
  """

  def __init__(self, log_path, command):
    self._log_path = log_path
    self._command = command
    self.output = ''

  def __enter__(self):
    self._log = open(self._log_path, 'w+')
    self.launcher = subprocess.Popen(self._command, cwd=ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT, text=True)
    return self

  def progress(self):
    self._log.seek(0)
    return [tuple(map(int, m.groups()))
            for m in PROGRESS.finditer(self._log.read())]

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
  assert output.count('demo steps written to the task table') == 1
  sizes = summary['table_sizes']
  assert sizes['imitation'] == 0
  assert sizes['task'] >= demo_steps
  assert _log_rows(workdir, 'evaluator_task')
  assert not os.path.exists(os.path.join(workdir, 'logs',
                                         'evaluator_imitation_validation'))

  summary, output = _run(workdir, demo_dirs, '--baseline=d4pgfd',
                         '--nojit_compile',
                         '--max_learner_steps=30', '--max_seconds=300',
                         '--max_train_demos=2')
  assert 'demo steps written to the task table' not in output
  assert summary['counts']['task_learner_steps'] >= 30
  # Restored from the replay checkpoint (items written after the coordinator's
  # final checkpoint are not in it), demos included, and none inserted again.
  assert summary['table_sizes']['task'] >= demo_steps


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
