"""launch/run_hosts.py across two network namespaces (two 'hosts', one machine).

Two Linux network namespaces joined by a veth pair (10.231.X.1/24 server,
10.231.X.2/24 actors; no other interface but each namespace's loopback). The
server role runs in one, the actor role in the other, so every byte of
experience, every variable fetch and every count crosses the veth pair. The
test asserts that experience arrived (table sizes, actor steps counted by the
server's counter), that both learners stepped, and that the actor host ran
only actor groups.

Needs root and `ip netns` (iproute2). Without them it skips, with the reason,
on a developer's machine, but fails when the environment has CI=true: a green
CI run must mean that the two hosts really ran. The namespaces, the veth pair
and every process started here are removed in a finalizer, also when the test
fails. The learners compile their step with XLA (the launchers' default),
which the other program tests skip to save time. About 2-3 minutes on 2 idle
CPU cores
(node start-up dominates; longer on a loaded machine).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
RUN_HOSTS = os.path.join(ROOT, 'launch', 'run_hosts.py')
# The server ends the run once the imitation learner took this many steps
# (so the test does not depend on how long ~10 processes take to start on a
# loaded machine), or at MAX_SECONDS.
MAX_LEARNER_STEPS = 20
MAX_SECONDS = 240
DEADLINE_SECONDS = 330


def _ip(*args, check=True):
  return subprocess.run(['ip', *args], check=check, capture_output=True,
                        text=True, timeout=30)


def _netns_unavailable_reason():
  if os.geteuid() != 0:
    return 'needs root to create network namespaces'
  if shutil.which('ip') is None:
    return ('`ip` (iproute2) is not installed: apt-get install -y iproute2')
  probe = f'mm_probe_{os.getpid()}'
  result = _ip('netns', 'add', probe, check=False)
  if result.returncode != 0:
    return f'`ip netns add` failed: {result.stderr.strip()}'
  _ip('netns', 'del', probe, check=False)
  return None


class Namespaces:
  """Two namespaces and a veth pair; `close()` removes all of it."""

  def __init__(self):
    pid = os.getpid()
    self.server = f'mm_srv_{pid}'
    self.actors = f'mm_act_{pid}'
    subnet = 1 + pid % 250
    self.server_ip = f'10.231.{subnet}.1'
    self.actor_ip = f'10.231.{subnet}.2'
    self._veth = (f'mms{pid}', f'mma{pid}')
    self._created = []

  def open(self):
    for name in (self.server, self.actors):
      _ip('netns', 'add', name)
      self._created.append(name)
      _ip('-n', name, 'link', 'set', 'lo', 'up')
    server_end, actor_end = self._veth
    _ip('link', 'add', server_end, 'type', 'veth', 'peer', 'name', actor_end)
    self._created.append(server_end)
    for end, name, address in ((server_end, self.server, self.server_ip),
                               (actor_end, self.actors, self.actor_ip)):
      _ip('link', 'set', end, 'netns', name)
      _ip('-n', name, 'addr', 'add', f'{address}/24', 'dev', end)
      _ip('-n', name, 'link', 'set', end, 'up')
    # The pair is wired: the actor namespace reaches the server address.
    subprocess.run(['ip', 'netns', 'exec', self.actors, 'ping', '-c1', '-W2',
                    self.server_ip], check=False, capture_output=True)

  def close(self):
    for name in reversed(self._created):
      if name.startswith('mm_'):
        _ip('netns', 'del', name, check=False)  # Also removes its veth end.
      else:
        _ip('link', 'del', name, check=False)  # Only if never moved.
    self._created.clear()


def _on_ci():
  """CI=true (as CI services set it): a skip here would hide a broken CI."""
  return os.environ.get('CI', '').lower() == 'true'


@pytest.fixture
def namespaces(request):
  reason = _netns_unavailable_reason()
  if reason:
    if _on_ci():
      pytest.fail(f'CI=true, but the two-host test cannot run: {reason}',
                  pytrace=False)
    pytest.skip(f'{reason} (set CI=true to make this a failure)')
  spaces = Namespaces()
  request.addfinalizer(spaces.close)
  spaces.open()
  return spaces


@pytest.fixture
def processes(request):
  """Started role processes (each its own session); killed at teardown."""
  started = []

  def finalize():
    for process, _ in started:
      if process.poll() is None:
        try:
          os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
          pass
    for process, _ in started:
      try:
        process.wait(timeout=25)
      except subprocess.TimeoutExpired:
        try:
          os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
          pass
        process.wait(timeout=10)
    for process, log in started:
      log.close()

  request.addfinalizer(finalize)
  return started


def _start(processes, namespace, args, log_path, env):
  log = open(log_path, 'w')
  process = subprocess.Popen(
      ['ip', 'netns', 'exec', namespace, PYTHON, RUN_HOSTS, *args],
      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
      start_new_session=True)
  processes.append((process, log))
  return process


def _tail(path, lines=60):
  with open(path) as f:
    return ''.join(f.readlines()[-lines:])


def test_server_and_actor_hosts_in_two_namespaces(namespaces, processes,
                                                   tmp_path):
  env = dict(os.environ, MUJOCO_GL=os.environ.get('MUJOCO_GL', 'egl'),
             TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
  hosts_file = str(tmp_path / 'hosts.json')
  common = [f'--hosts_file={hosts_file}',
            f'--demos={tmp_path}/demos_train',
            f'--validation_demos={tmp_path}/demos_validation',
            '--num_demos=2', '--num_validation_demos=1']
  server_log = str(tmp_path / 'server.log')
  actors_log = str(tmp_path / 'actors.log')
  server = _start(processes, namespaces.server, [
      '--role=server', f'--advertise_host={namespaces.server_ip}',
      f'--workdir={tmp_path}/server', f'--max_seconds={MAX_SECONDS}',
      f'--max_learner_steps={MAX_LEARNER_STEPS}',
      *common], server_log, env)
  actors = _start(processes, namespaces.actors, [
      '--role=actors', f'--workdir={tmp_path}/actors',
      '--num_imitation_actors=1', '--num_task_actors=1',
      '--server_wait_seconds=300', '--server_gone_seconds=6', *common],
      actors_log, env)

  deadline = time.time() + DEADLINE_SECONDS
  while server.poll() is None and time.time() < deadline:
    time.sleep(2)
  assert server.poll() == 0, ('server role did not finish cleanly:\n' +
                              _tail(server_log) + '\n--- actors ---\n' +
                              _tail(actors_log))
  actors.wait(timeout=max(10, deadline + 45 - time.time()))
  assert actors.returncode == 0, _tail(actors_log)

  with open(hosts_file) as f:
    hosts = json.load(f)
  assert hosts['addresses']['replay'] == f'{namespaces.server_ip}:18700'
  with open(tmp_path / 'server' / 'summary.json') as f:
    summary = json.load(f)
  counts = summary['counts']
  print(json.dumps(dict(counts=counts, tables=summary['table_sizes']),
                   indent=1))
  # Experience from the other namespace reached both tables...
  assert counts.get('imitation_actor_steps', 0) > 0, summary
  assert counts.get('task_actor_steps', 0) > 0, summary
  assert summary['table_sizes']['imitation'] > 0, summary
  assert summary['table_sizes']['task'] > 0, summary
  # ...and both learners learned from it, each to the step limit (the run
  # ends once both reached it).
  for key in ('imitation_learner_steps', 'task_learner_steps'):
    assert counts.get(key, 0) >= MAX_LEARNER_STEPS, (
        f'{key}: {summary}\n{_tail(server_log)}')
  # Actors ran only on the actor host; learners only on the server host.
  assert os.path.isdir(tmp_path / 'actors' / 'logs' / 'imitation_actor')
  assert os.path.isdir(tmp_path / 'actors' / 'logs' / 'task_actor')
  assert not os.path.exists(tmp_path / 'server' / 'logs' / 'imitation_actor')
  assert not os.path.exists(tmp_path / 'actors' / 'logs' /
                            'imitation_learner')
  # The actor host ran its actors until the server ended, noticed that (or
  # its actors ended) and exited. (It once stopped its actors right after
  # launching them, having looked for their processes too early.)
  with open(actors_log) as f:
    ran = re.search(r'\[metamimic\] actor host ran (\d+) s', f.read())
  assert ran, _tail(actors_log)
  assert int(ran.group(1)) >= 0.8 * summary['elapsed_seconds'], (
      ran.group(0), summary['elapsed_seconds'])
