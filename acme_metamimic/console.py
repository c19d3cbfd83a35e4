"""A calm console for the launchers: progress, errors and the summary.

Launchpad's current-terminal launcher gives every node the launcher's own
stdout and stderr, so a run's console interleaved each node's start-up
chatter (Gym's deprecation notice, absl INFO lines, CUDA loader messages)
with the coordinator's progress lines: about 280 lines for the main job.
Launchpad's 'output_to_files' terminal would move node output to files, but
it also treats any node that ends, an actor killed on purpose included, as
the program failing.

`CalmConsole` keeps the launcher as it is and filters instead. While open, it
points file descriptors 1 and 2 of the launcher (inherited by every node it
starts) at a pipe, writes all that arrives to <workdir>/logs/console.log, and
passes to the terminal only lines that carry `[metamimic]` (progress and
notices) or are errors: absl E/F lines and whole tracebacks. `close()`, once
the nodes are stopped, gives the launcher its terminal back, so the summary
comes last. `verbose=True` passes everything.
"""

import os
import re
import shutil
import sys
import threading
from typing import Dict, TextIO

LOG_FILE = 'console.log'
# Under <workdir>/logs: the `sed` that the nodes' PATH finds first.
SHIM_DIRECTORY = 'bin'
MARK = '[metamimic]'
_ANSI = re.compile(r'\x1b\[[0-9;]*m')
# Launchpad's per-node prefix, '[group/index] '.
_NODE_PREFIX = re.compile(r'^(\[[\w.-]+/\d+\] )?')
_ERROR = re.compile(r'^[EF]\d{4} ')  # absl: 'E1126 16:00:00.000000 ...'
_TRACEBACK = 'Traceback (most recent call last)'


class LineFilter:
  """Decides, line by line, what reaches the terminal (without ANSI colour).

  A traceback is passed whole: from its header through the exception line
  (the first line of that node that is not indented), per node, since nodes'
  lines interleave.
  """

  def __init__(self):
    self._in_traceback: Dict[str, bool] = {}

  def __call__(self, line: str) -> bool:
    plain = _ANSI.sub('', line)
    prefix = _NODE_PREFIX.match(plain).group(0)
    body = plain[len(prefix):]
    if body.startswith(_TRACEBACK):
      self._in_traceback[prefix] = True
      return True
    if self._in_traceback.get(prefix):
      if not body.startswith((' ', '\t')):
        self._in_traceback[prefix] = False  # The exception line: last one.
      return True
    return MARK in body or bool(_ERROR.match(body))


class CalmConsole:
  """Routes this process's output, and its future children's, via a filter."""

  def __init__(self, workdir: str, verbose: bool = False):
    directory = os.path.join(workdir, 'logs')
    os.makedirs(directory, exist_ok=True)
    self.log_path = os.path.join(directory, LOG_FILE)
    self._verbose = verbose
    sys.stdout.flush()
    sys.stderr.flush()
    self._saved = (os.dup(1), os.dup(2))
    self._terminal = os.fdopen(os.dup(1), 'w', buffering=1)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    self._log = open(self.log_path, 'a', buffering=1)
    self._thread = threading.Thread(
        target=self._pump, args=(os.fdopen(read_end, errors='replace'),),
        name='calm_console', daemon=True)
    self._thread.start()

  def _pump(self, pipe: TextIO):
    shown = LineFilter()
    for line in pipe:
      self._log.write(line)
      if self._verbose:
        self._terminal.write(line)
      elif shown(line):
        self._terminal.write(_ANSI.sub('', line))

  def close(self, timeout: float = 5.):
    """Restores the terminal; call it once the node processes have ended.

    Waits up to `timeout` for the pipe to drain (it ends when no process
    holds it any more).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    for saved, fd in zip(self._saved, (1, 2)):
      os.dup2(saved, fd)
      os.close(saved)
    self._thread.join(timeout)
    self._terminal.flush()


def line_buffered_sed_path(workdir: str) -> str:
  """A PATH for the nodes whose first `sed` writes each line at once.

  Launchpad's current-terminal launcher runs each node as `decorate_output
  COLOUR TITLE command`, a bash script that pipes the node's output through
  `sed` to put '[group/index]' before each line. Into a pipe (this console's,
  or a file), sed fills a 4 KB buffer before it writes: the coordinator's
  progress rows reached the console and console.log in bursts of about 20
  rows, 100 s apart, and a test waiting for a row waited that long too. The
  `sed` written here (<workdir>/logs/bin/sed) runs the real one with -u.
  decorate_output ignores SIGINT (`trap '' INT`), and so does its sed: a
  Ctrl+C leaves the nodes' output flowing while the launcher stops them.
  """
  directory = os.path.join(workdir, 'logs', SHIM_DIRECTORY)
  path = os.environ.get('PATH', os.defpath)
  # Never the shim itself (a launcher started with a node's PATH).
  real = shutil.which('sed', path=os.pathsep.join(
      d for d in path.split(os.pathsep)
      if os.path.abspath(d) != os.path.abspath(directory)))
  if real is None:
    return path  # Launchpad's decorate_output fails without sed anyway.
  os.makedirs(directory, exist_ok=True)
  shim = os.path.join(directory, 'sed')
  script = f'#!/bin/sh\nexec {real} -u "$@"\n'
  try:
    with open(shim) as f:
      current = f.read()
  except OSError:
    current = None
  if current != script:
    with open(shim + '.tmp', 'w') as f:
      f.write(script)
    os.chmod(shim + '.tmp', 0o755)
    os.replace(shim + '.tmp', shim)
  return os.pathsep.join([directory, path])
