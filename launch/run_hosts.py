"""Runs distributed MetaMimic on a plain cluster: one server host, actor hosts.

Server host (replay, counter, coordinator, both learners, evaluators):

    python launch/run_hosts.py --role=server --advertise_host=10.0.0.1 \
        --workdir=workdir/metamimic --hosts_file=/shared/metamimic_hosts.json

It runs those groups as a local Launchpad program; replay, counter and the two
learners listen on fixed ports --base_port .. --base_port+3 (all interfaces),
and it writes their advertised addresses (plus the run's preset, seed and
curriculum setting) to --hosts_file. Like run_local.py it ends at
--max_seconds/--max_learner_steps with <workdir>/summary.json and a summary.

Each actor host (its own share of the actor groups):

    python launch/run_hosts.py --role=actors --hosts_file=/shared/metamimic_hosts.json \
        --num_imitation_actors=8 --num_task_actors=8 \
        --first_imitation_actor=8 --first_task_actor=8 --workdir=workdir/actors1

(or --server_host=10.0.0.1 --base_port=... instead of a shared hosts file;
then --preset/--seed/--demo_curriculum must match the server's). Actors are
the program's own `imitation_actor`/`task_actor` nodes, calling the server's
Reverb and Courier endpoints. The actor host ends when the server's replay has
been unreachable for --server_gone_seconds. Every host needs the training
demos (--demos; recorded if missing, deterministic in --seed).

All other flags are run_local.py's.
"""

import json
import os
import socket
import sys
import time

from absl import app
from absl import flags
from absl import logging
import launchpad as lp
from launchpad.nodes.python import local_multi_processing

import run_local  # launch/ is on sys.path when this script runs.
from acme_metamimic import agent_distributed
from acme_metamimic import csv_logs
from acme_metamimic import multihost
from acme_metamimic import workdirs

_ROLE = flags.DEFINE_enum('role', None, ['server', 'actors'],
                          'Which share of the program this host runs.')
_HOSTS_FILE = flags.DEFINE_string(
    'hosts_file', None, 'JSON with the server endpoints: written by the '
    'server, read by actor hosts. Default <workdir>/hosts.json.')
_ADVERTISE_HOST = flags.DEFINE_string(
    'advertise_host', None, 'server: the host name or IP actor hosts reach '
    'this host at (default: this host\'s FQDN).')
_SERVER_HOST = flags.DEFINE_string(
    'server_host', None, 'actors: the server host; skips the hosts file '
    '(ports from --base_port).')
_BASE_PORT = flags.DEFINE_integer(
    'base_port', 18700, 'replay, counter, imitation_learner, task_learner '
    'listen on base_port + 0..3.')
_FIRST_IMITATION_ACTOR = flags.DEFINE_integer(
    'first_imitation_actor', 0, 'actors: id of this host\'s first imitation '
    'actor (use disjoint ranges across hosts; ids seed environments).')
_FIRST_TASK_ACTOR = flags.DEFINE_integer(
    'first_task_actor', 0, 'actors: id of this host\'s first task actor.')
_SERVER_WAIT_SECONDS = flags.DEFINE_float(
    'server_wait_seconds', 600., 'actors: how long to wait for the hosts file '
    'and the replay server.')
_SERVER_GONE_SECONDS = flags.DEFINE_float(
    'server_gone_seconds', 30., 'actors: stop once the replay server has not '
    'answered for this long.')

SETTINGS = ('preset', 'seed', 'demo_curriculum')


def _hosts_file(workdir: str) -> str:
  return os.path.abspath(_HOSTS_FILE.value or
                         os.path.join(workdir, 'hosts.json'))


def _launch(program: lp.Program, workdir: str):
  resources = {group: local_multi_processing.PythonProcess(
                   env=run_local.node_env(group, workdir))
               for group in program.groups}
  lp.launch(program, launch_type='local_mp', terminal='current_terminal',
            local_resources=resources)
  run_local.stop_on_signals()
  run_local.wait_for_node_processes(program)


def run_server(workdir: str):
  # Actor counts only size the actor groups, which run elsewhere.
  agent = run_local.make_program_definition(workdir, 1, 1)
  # The replay node runs on this host.
  run_local.check_replay_memory(agent)
  run_local.prepare_workdir(workdir, agent)
  run_local.ensure_demos()
  summary_path = os.path.join(workdir, agent_distributed.SUMMARY_FILE)
  if os.path.exists(summary_path):
    os.remove(summary_path)
  program = multihost.server_program(agent, _BASE_PORT.value)
  host = _ADVERTISE_HOST.value or socket.getfqdn()
  addresses = multihost.exposed_addresses(host, _BASE_PORT.value)
  hosts_file = _hosts_file(workdir)
  multihost.write_hosts_file(
      hosts_file, addresses,
      {name: flags.FLAGS[name].value for name in SETTINGS})
  print(f'[metamimic] server groups {sorted(program.groups)}; actor hosts '
        f'connect to\n{multihost.describe_addresses(addresses)}\n'
        f'[metamimic] hosts file {hosts_file}', flush=True)
  start = time.time()
  _launch(program, workdir)
  dead = []
  try:
    dead = run_local.wait_for(summary_path)
  finally:  # Also on errors: don't leave the nodes running.
    run_local.stop_nodes(grace_seconds=5. if dead else 20.)
  run_local.end_on_dead_nodes(dead, workdir)
  if not os.path.exists(summary_path):
    logging.error('The server ended without a summary; see the node output '
                  'above and the logs under %s.', workdir)
    raise SystemExit(1)
  with open(summary_path) as f:
    run_local.print_summary(json.load(f), time.time() - start)


def _actor_addresses(workdir: str):
  if _SERVER_HOST.value:
    return multihost.exposed_addresses(_SERVER_HOST.value, _BASE_PORT.value)
  hosts = multihost.read_hosts_file(_hosts_file(workdir),
                                    wait_seconds=_SERVER_WAIT_SECONDS.value)
  for name, value in hosts['settings'].items():
    if name in SETTINGS and flags.FLAGS[name].value != value:
      logging.info('Using the server\'s --%s=%s.', name, value)
      flags.FLAGS[name].value = value
  return hosts['addresses']


def run_actors(workdir: str):
  addresses = _actor_addresses(workdir)
  run_local.ensure_demos()
  print(f'[metamimic] waiting for the server at {addresses["replay"]}',
        flush=True)
  sizes = multihost.wait_for_server(addresses, _SERVER_WAIT_SECONDS.value)
  print(f'[metamimic] server is up; replay tables {sizes}', flush=True)
  first_imitation, first_task = (_FIRST_IMITATION_ACTOR.value,
                                 _FIRST_TASK_ACTOR.value)
  agent = run_local.make_program_definition(
      workdir, first_imitation + run_local._NUM_IMITATION_ACTORS.value,  # pylint: disable=protected-access
      first_task + run_local._NUM_TASK_ACTORS.value)  # pylint: disable=protected-access
  program = multihost.actor_program(agent, addresses, first_imitation,
                                    first_task)
  print(f'[metamimic] actor host: {multihost.group_sizes(program)} against\n'
        f'{multihost.describe_addresses(addresses)}', flush=True)
  start = time.time()
  _launch(program, workdir)
  last_seen = time.time()
  try:
    while run_local._node_processes():  # pylint: disable=protected-access
      time.sleep(2.)
      if multihost.port_open(addresses['replay']):
        last_seen = time.time()
      elif time.time() - last_seen > _SERVER_GONE_SECONDS.value:
        print('[metamimic] replay server gone; stopping the actors',
              flush=True)
        break
  finally:
    run_local.stop_nodes()
  lines = [f'[metamimic] actor host ran {time.time() - start:.0f} s']
  for group in sorted(multihost.group_sizes(program)):
    rows = csv_logs.read_csv_log(workdir, group)
    if rows:
      lines.append(f'  {group}: {rows[-1].get("episodes", 0):.0f} episodes '
                   f'logged, {group}_steps {rows[-1].get(f"{group}_steps", 0):.0f}'
                   ' (all hosts)')
  print('\n'.join(lines), flush=True)


def main(argv):
  del argv
  if _ROLE.value is None:
    raise app.UsageError('Give --role=server or --role=actors.')
  run_local.check_flags()
  workdir = os.path.abspath(run_local._WORKDIR.value)  # pylint: disable=protected-access
  try:
    workdirs.check_location(workdir)
  except workdirs.WorkdirError as e:
    raise app.UsageError(str(e)) from e
  os.makedirs(workdir, exist_ok=True)
  try:
    if _ROLE.value == 'server':
      run_server(workdir)
    else:
      run_actors(workdir)
  except run_local.Stopped as e:  # The nodes were stopped in order.
    print(f'[metamimic] stopped by {e}; run the same command to resume from '
          f'{workdir}', flush=True)
    sys.exit(128 + e.signum)


if __name__ == '__main__':
  app.run(main)
