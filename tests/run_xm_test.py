"""launch/run_xm.py --dry_run and the resource mapping in multihost.py."""

import functools
import importlib.util
import os
import re
import subprocess
import sys

import pytest

from acme_metamimic import agent_distributed
from acme_metamimic import config as config_lib
from acme_metamimic import multihost
from acme_metamimic import presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_XM = os.path.join(ROOT, 'launch', 'run_xm.py')


def _run_xm(*args, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2',
             MUJOCO_GL=os.environ.get('MUJOCO_GL', 'egl'))
  return subprocess.run([sys.executable, RUN_XM, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_dry_run_prints_mapping_for_256_plus_256_actors():
  result = _run_xm('--dry_run', '--num_imitation_actors=256',
                   '--num_task_actors=256')
  assert result.returncode == 0, result.stderr[-3000:]
  out = result.stdout
  print(out)
  # group -> count and resources.
  rows = dict(re.findall(r'^  (\w+)\s+x(\d+)\s', out, re.MULTILINE))
  assert rows == {'replay': '1', 'counter': '1', 'coordinator': '1',
                  'imitation_learner': '1', 'task_learner': '1',
                  'imitation_actor': '256', 'task_actor': '256',
                  'evaluator': '1'}
  for group in ('replay', 'imitation_learner', 'task_learner'):
    assert re.search(rf'^  {group}\s+x1\s+accelerator: .*1 x V100', out,
                     re.MULTILINE), group
  for group in ('imitation_actor', 'task_actor'):
    assert re.search(rf'^  {group}\s+x256\s+cpu: 4 vCPU', out, re.MULTILINE)
  assert 'total nodes 518; accelerators 3' in out
  # Vertex AI worker pools (pool 0 has exactly one replica).
  assert 'workerpool0: 1 replicas' in out
  assert 'workerpool1: 3 replicas, accelerator' in out
  assert 'workerpool2: 514 replicas, cpu' in out
  assert 'imitation_actor-[0:256] -> workerpool2-[1:257]' in out
  assert 'task_actor-[0:256] -> workerpool2-[257:513]' in out
  assert 'dry run: nothing launched' in out


@pytest.mark.skipif(importlib.util.find_spec('xmanager') is not None,
                    reason='xmanager is installed: the launch would be real')
def test_real_launch_without_xmanager_says_what_to_install():
  result = _run_xm('--num_imitation_actors=1', '--num_task_actors=1')
  assert result.returncode != 0
  assert 'pip install xmanager' in result.stderr + result.stdout


def test_plan_matches_launchpad_rules():
  spec = lambda cpu: multihost.ResourceSpec('cpu', cpu=cpu, ram_gib=1)
  # No single-node group: the first pool's first node is split off.
  pools = multihost.plan_worker_pools({'a': 2, 'b': 3},
                                      {'a': spec(1), 'b': spec(2)})
  assert [(p.name, len(p.nodes)) for p in pools] == [
      ('workerpool0', 1), ('workerpool1', 3), ('workerpool2', 1)]
  # More than four distinct specs cannot run on Vertex AI.
  with pytest.raises(ValueError, match='Vertex AI supports 4'):
    multihost.plan_worker_pools({str(i): 1 for i in range(5)},
                                {str(i): spec(i) for i in range(5)})
  with pytest.raises(ValueError, match='No resource spec'):
    multihost.plan_worker_pools({'a': 1}, {})


def _agent(tmp_path, imitation, task):
  config = config_lib.features_config(num_imitation_actors=imitation,
                                      num_task_actors=task)
  return agent_distributed.DistributedMetaMimic(
      environment_factory=functools.partial(presets.make_environment,
                                            'features'),
      network_factory=functools.partial(presets.make_networks, 'features',
                                        config),
      demonstrations_factory=lambda split: [],
      config=config, workdir=str(tmp_path), max_seconds=1.)


def test_server_and_actor_programs_split_the_groups(tmp_path):
  server = multihost.server_program(_agent(tmp_path, 1, 1), base_port=18900)
  assert sorted(server.groups) == sorted(multihost.SERVER_GROUPS)
  [replay] = server.groups['replay']
  replay.bind_addresses()  # What the local launch does: stays pinned.
  assert replay.addresses[0].resolve() == 'localhost:18900'

  addresses = multihost.exposed_addresses('10.0.0.1', 18900)
  actors = multihost.actor_program(_agent(tmp_path, 3, 2), addresses,
                                   first_imitation_actor=1, first_task_actor=2)
  # Host with imitation actors 1, 2 and no task actors (0, 1 run elsewhere).
  assert multihost.group_sizes(actors) == {'imitation_actor': 2}
  node = actors.groups['imitation_actor'][0]
  assert node._args[-1] == 1  # pylint: disable=protected-access
  replay_handle, learner_handle, counter_handle = node._args[:3]  # pylint: disable=protected-access
  assert replay_handle._address.resolve() == '10.0.0.1:18900'  # pylint: disable=protected-access
  assert counter_handle._address.resolve() == '10.0.0.1:18901'  # pylint: disable=protected-access
  assert learner_handle._address.resolve() == '10.0.0.1:18902'  # pylint: disable=protected-access


def test_hosts_file_round_trip(tmp_path):
  path = str(tmp_path / 'hosts.json')
  addresses = multihost.exposed_addresses('h', 1)
  multihost.write_hosts_file(path, addresses, {'seed': 3})
  hosts = multihost.read_hosts_file(path)
  assert hosts['addresses'] == addresses and hosts['settings'] == {'seed': 3}
  with pytest.raises(FileNotFoundError):
    multihost.read_hosts_file(str(tmp_path / 'missing.json'), wait_seconds=0)
