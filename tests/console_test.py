"""The launchers' calm console: what reaches the terminal, what the log keeps.

Lines below are as a run's nodes print them (Launchpad's colour and node
prefix included). The end-to-end test runs CalmConsole in a subprocess, so
that it can take over that process's file descriptors 1 and 2, with child
processes writing through them as Launchpad's nodes do.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import launchpad

from acme_metamimic import console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLOUR, RESET = '\x1b[1;32m', '\x1b[0;0m'


def _node(group, text):
  return f'{COLOUR}[{group}/0] {text}{RESET}\n'


def test_progress_notices_and_errors_pass_the_rest_does_not():
  shown = console.LineFilter()
  progress = _node('coordinator', '[metamimic]      8s  imitation learner '
                   'steps 0  task learner steps 0')
  assert shown(progress)
  assert shown('[metamimic] training on the first 3 of 3 demos in d\n')
  assert shown(_node('imitation_actor', 'E1126 15:53:05.463937 140190 '
                     'base.py:130] Timeout (10000 ms) exceeded'))
  for noise in (
      'Gym has been unmaintained since 2022 and does not support NumPy 2.0\n',
      _node('coordinator', 'I1126 15:51:56.193585 140360 __init__.py:84] '
            'MUJOCO_GL=egl, attempting to import specified OpenGL backend.'),
      '2026-11-26 15:49:44.469990: W tensorflow/stream_executor/platform/'
      "default/dso_loader.cc:64] Could not load dynamic library 'libcuda.so.1'"
      '\n',
      _node('task_learner', 'W1126 16:00:00.000000 1 def_function.py:1] 5 out '
            'of the last 5 calls to <function> triggered tf.function '
            'retracing.'),
  ):
    assert not shown(noise), noise


def test_a_traceback_passes_whole_even_between_other_nodes_lines():
  shown = console.LineFilter()
  lines = [
      (_node('task_learner', 'Traceback (most recent call last):'), True),
      (_node('counter', 'I1126 16:00:00.000000 1 x.py:1] unrelated'), False),
      (_node('task_learner', '  File "learning.py", line 10, in step'), True),
      (_node('task_learner', '    raise ValueError("bad batch")'), True),
      (_node('task_learner', 'ValueError: bad batch'), True),
      (_node('task_learner', 'I1126 16:00:01.000000 1 x.py:1] after'), False),
  ]
  assert [shown(line) for line, _ in lines] == [want for _, want in lines]


def test_console_shows_progress_keeps_node_output_in_the_log(tmp_path):
  script = textwrap.dedent(f'''
      import logging, subprocess, sys
      from acme_metamimic import console
      calm = console.CalmConsole({str(tmp_path)!r})
      print('[metamimic] launcher notice', flush=True)
      subprocess.run(['sh', '-c', 'echo "node chatter"; '
                      'echo "[coordinator/0] [metamimic] 5s progress"; '
                      'echo "E1126 00:00:00.0 1 x.py:1] node error" >&2'])
      calm.close()
      print('=== summary ===', flush=True)
      print('stderr works again', file=sys.stderr, flush=True)
  ''')
  result = subprocess.run([sys.executable, '-c', script], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines() == [
      '[metamimic] launcher notice', '[coordinator/0] [metamimic] 5s progress',
      'E1126 00:00:00.0 1 x.py:1] node error', '=== summary ===']
  assert result.stderr == 'stderr works again\n'
  with open(tmp_path / 'logs' / console.LOG_FILE) as f:
    log = f.read()
  assert 'node chatter' in log and 'node error' in log
  assert '=== summary ===' not in log


def test_nodes_sed_passes_each_line_at_once(tmp_path):
  """Launchpad's decorate_output pipes a node through `sed`; into a pipe a
  plain sed holds lines until 4 KB have gathered. With the PATH the
  launchers give the nodes, the first line arrives while the node still
  runs."""
  decorate_output = os.path.join(os.path.dirname(launchpad.__file__), 'launch',
                                 'run_locally', 'decorate_output')
  node = [sys.executable, '-c',
          'import time; print("first", flush=True); time.sleep(30)']
  env = dict(os.environ, PATH=console.line_buffered_sed_path(str(tmp_path)))
  process = subprocess.Popen([decorate_output, '33', 'node/0', *node],
                             stdout=subprocess.PIPE, env=env, text=True,
                             start_new_session=True)
  try:
    # readline returns once sed wrote the line: with a buffering sed, only as
    # the node ends after 30 s, and then the wrapper ends within moments.
    line = process.stdout.readline()
    time.sleep(0.5)
    assert process.poll() is None, 'the line arrived only as the node ended'
    assert '[node/0] first' in line, line
  finally:
    try:
      os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # Ended already.
      pass
    process.wait()
  # Rewritten only when it differs: a second launch keeps the same file.
  shim = os.path.join(tmp_path, 'logs', console.SHIM_DIRECTORY, 'sed')
  stat = os.stat(shim)
  console.line_buffered_sed_path(str(tmp_path))
  assert os.stat(shim).st_mtime_ns == stat.st_mtime_ns
  assert os.access(shim, os.X_OK)
