"""Running `DistributedMetaMimic`'s node groups on several machines.

Two launchers use this module (see docs/multihost.md):

- launch/run_xm.py (Vertex AI through XManager): `default_resource_specs` maps
  each node group to the resources of the host it runs on; `plan_worker_pools`
  reproduces how Launchpad's VERTEX_AI launch packs groups into Vertex AI
  worker pools, so `--dry_run` shows the deployment without a cloud account.
- launch/run_hosts.py (a plain cluster): one host runs the server groups
  (replay, counter, coordinator, learners, evaluators) as a local Launchpad
  program whose replay, counter and learner nodes listen on fixed ports
  (`pin_address`); other hosts run actor groups built by the same
  `DistributedMetaMimic.build()`, with those four nodes pinned to the server's
  host:port (`actor_program`). The addresses travel in a small JSON file.

Nothing here re-implements agent logic: both hosts run the node methods of
`DistributedMetaMimic` with Launchpad's own Reverb/Courier handles.
"""

import collections
import dataclasses
import functools
import json
import os
import socket
import time
from typing import Dict, List, Mapping, Optional, Tuple

import launchpad as lp
from launchpad import address as lp_address
import reverb

from acme_metamimic import agent_distributed

ACTOR_GROUPS = ('imitation_actor', 'task_actor')
SERVER_GROUPS = ('replay', 'counter', 'coordinator', 'imitation_learner',
                 'task_learner', 'evaluator')
# Server nodes that actors call, in port order (port = base_port + index).
EXPOSED_GROUPS = ('replay', 'counter', 'imitation_learner', 'task_learner')
HOSTS_FILE_VERSION = 1


# Resource specs (Vertex AI / XManager).


@dataclasses.dataclass(frozen=True)
class ResourceSpec:
  """What one node of a group gets: one Vertex AI replica (a VM) per node."""

  host: str  # 'accelerator' or 'cpu' (documentation; also printed).
  cpu: int  # vCPUs.
  ram_gib: int
  accelerator: Optional[str] = None  # XManager resource name: t4, v100, a100.
  accelerator_count: int = 0

  def describe(self) -> str:
    text = f'{self.host}: {self.cpu} vCPU, {self.ram_gib} GiB'
    if self.accelerator:
      text += f', {self.accelerator_count} x {self.accelerator.upper()}'
    return text

  def to_xm(self):
    """The `xm.JobRequirements` (needs `pip install xmanager`)."""
    from xmanager import xm  # pylint: disable=g-import-not-at-top
    kwargs = dict(cpu=self.cpu, ram=self.ram_gib * xm.GiB)
    if self.accelerator:
      kwargs[self.accelerator] = self.accelerator_count
    return xm.JobRequirements(**kwargs)


def default_resource_specs(accelerator: str = 'v100', accelerator_count: int = 1
                           ) -> Dict[str, ResourceSpec]:
  """Group -> resources: replay and learners on accelerator hosts, rest CPU.

  - replay, imitation_learner, task_learner: accelerator hosts (one GPU each,
    8 vCPU for the input pipeline, 64 GiB: the replay host holds both tables).
    They share one spec so Vertex AI puts them in one worker pool.
  - coordinator: a small CPU host. It is the only single-node group with its
    own spec, so it becomes worker pool 0 (Vertex AI wants exactly one replica
    there).
  - counter, imitation_actor, task_actor, evaluator: CPU hosts (4 vCPU,
    8 GiB: one environment + policy per actor, rendering for the vision
    preset). Same spec, one worker pool.
  Three worker pools in all (Vertex AI allows four).
  """
  accelerator_host = ResourceSpec('accelerator', cpu=8, ram_gib=64,
                                  accelerator=accelerator,
                                  accelerator_count=accelerator_count)
  cpu_host = ResourceSpec('cpu', cpu=4, ram_gib=8)
  return {
      'replay': accelerator_host,
      'imitation_learner': accelerator_host,
      'task_learner': accelerator_host,
      'coordinator': ResourceSpec('cpu', cpu=2, ram_gib=4),
      'counter': cpu_host,
      'imitation_actor': cpu_host,
      'task_actor': cpu_host,
      'evaluator': cpu_host,
  }


@dataclasses.dataclass
class WorkerPool:
  name: str
  spec: ResourceSpec
  nodes: List[Tuple[str, int]]  # (group, index within the group)


VERTEX_AI_POOLS = ('workerpool0', 'workerpool1', 'workerpool2', 'workerpool3')


def plan_worker_pools(group_sizes: Mapping[str, int],
                      specs: Mapping[str, ResourceSpec]) -> List[WorkerPool]:
  """Vertex AI worker pools, as launchpad/launch/xm_docker/launch.py makes them.

  Mirrors that code (it cannot be called without xmanager and a cloud):
  groups with equal requirements share a pool; a one-node pool goes first
  (else the first pool's first node is split off); at most four pools.
  """
  missing = [group for group in group_sizes if group not in specs]
  if missing:
    raise ValueError(f'No resource spec for node groups {missing}.')
  by_spec = collections.OrderedDict()
  for group, size in group_sizes.items():
    by_spec.setdefault(specs[group], []).extend(
        (group, index) for index in range(size))
  pools = [(spec, nodes) for spec, nodes in by_spec.items()]
  for index, (spec, nodes) in enumerate(pools):
    if len(nodes) == 1:
      pools = [pools[index]] + pools[:index] + pools[index + 1:]
      break
  if len(pools[0][1]) != 1:
    spec, nodes = pools[0]
    pools = [(spec, nodes[:1])] + pools[1:] + [(spec, nodes[1:])]
  if len(pools) > len(VERTEX_AI_POOLS):
    raise ValueError(f'{len(pools)} distinct worker pools; Vertex AI supports '
                     f'{len(VERTEX_AI_POOLS)}. Give more groups equal specs.')
  return [WorkerPool(name, spec, nodes)
          for name, (spec, nodes) in zip(VERTEX_AI_POOLS, pools)]


def format_plan(group_sizes: Mapping[str, int],
                specs: Mapping[str, ResourceSpec]) -> str:
  """Human-readable mapping: group -> spec and count; pools; node names."""
  pools = plan_worker_pools(group_sizes, specs)
  pool_of = {}
  for pool in pools:
    for group, _ in pool.nodes:
      pool_of.setdefault(group, []).append(pool.name)
  lines = ['node group -> resources (one Vertex AI replica per node)']
  width = max(len(group) for group in group_sizes)
  for group, size in group_sizes.items():
    lines.append(f'  {group:{width}s}  x{size:<4d} {specs[group].describe()}'
                 f'  [{", ".join(sorted(set(pool_of[group])))}]')
  lines.append(f'total nodes {sum(group_sizes.values())}; accelerators '
               f'{sum(size * specs[g].accelerator_count for g, size in group_sizes.items())}')
  lines.append('worker pools')
  for pool in pools:
    lines.append(f'  {pool.name}: {len(pool.nodes)} replicas, '
                 f'{pool.spec.describe()}')
  lines.append('node names in the Vertex AI runtime')
  seen = collections.defaultdict(int)
  for pool in pools:
    start = 0
    for i, (group, _) in enumerate(pool.nodes):
      if i + 1 == len(pool.nodes) or pool.nodes[i + 1][0] != group:
        count = i + 1 - start
        lines.append(f'  {_name_range(group, seen[group], count)} -> '
                     f'{_name_range(pool.name, start, count)}')
        seen[group] += count
        start = i + 1
  return '\n'.join(lines)


def _name_range(name: str, start: int, count: int) -> str:
  return f'{name}-{start}' if count == 1 else f'{name}-[{start}:{start + count}]'


# Fixed addresses (self-hosted clusters).


class FixedAddressBuilder(lp_address.AbstractAddressBuilder):
  """Resolves an lp.Address to a given host:port."""

  def __init__(self, address: str):
    host, _, port = address.rpartition(':')
    if not host or not port.isdigit():
      raise ValueError(f'Expected host:port, got {address!r}.')
    self._address = address

  def build(self) -> str:
    return self._address


def _bind_fixed(addresses, builder, **unused_kwargs):
  for address in addresses:
    address.bind(builder)


def pin_address(node, address: str) -> None:
  """Binds `node`'s (single) address to `address`, also at launch time.

  Launchpad's local launch rebinds every node of the program to a free
  localhost port; replacing the node's `bind_addresses` keeps `address`. A node
  launched here listens on the port (Reverb and Courier servers listen on all
  interfaces); a node launched elsewhere is reached at host:port by the handles
  that point at it.
  """
  if len(node.addresses) != 1:
    raise ValueError(f'{node} has {len(node.addresses)} addresses; expected 1.')
  builder = FixedAddressBuilder(address)
  node.bind_addresses = functools.partial(_bind_fixed, node.addresses, builder)
  _bind_fixed(node.addresses, builder)


def exposed_addresses(host: str, base_port: int) -> Dict[str, str]:
  """Group -> host:port of the server nodes that actors call."""
  return {group: f'{host}:{base_port + index}'
          for index, group in enumerate(EXPOSED_GROUPS)}


def server_program(agent: agent_distributed.DistributedMetaMimic,
                   base_port: int, name: str = 'metamimic_server'
                   ) -> lp.Program:
  """The program without its actor groups; exposed nodes on fixed ports."""
  program = agent.build(name=name)
  for group in ACTOR_GROUPS:
    program.groups.pop(group, None)
  for group, address in exposed_addresses('localhost', base_port).items():
    if group in program.groups:  # Baselines have no imitation learner.
      [node] = program.groups[group]
      pin_address(node, address)
  return program


def actor_program(agent: agent_distributed.DistributedMetaMimic,
                  addresses: Mapping[str, str], first_imitation_actor: int = 0,
                  first_task_actor: int = 0, name: str = 'metamimic_actors'
                  ) -> lp.Program:
  """Only the actor groups, calling the server nodes at `addresses`.

  `agent` must have been made with first_* + this host's actor counts; the
  first `first_*` actors of each group run on other hosts (actor ids seed the
  environments, so hosts should use disjoint ranges).
  """
  program = agent.build(name=name)
  for group in EXPOSED_GROUPS:
    if group in program.groups:  # Baselines have no imitation learner.
      [node] = program.groups[group]
      pin_address(node, addresses[group])
  for group in SERVER_GROUPS:
    program.groups.pop(group, None)
  for group, first in (('imitation_actor', first_imitation_actor),
                       ('task_actor', first_task_actor)):
    nodes = program.groups.pop(group, [])[first:]
    if nodes:
      program.groups[group] = nodes
  if not program.groups:
    raise ValueError('No actors left to run on this host.')
  return program


def write_hosts_file(path: str, addresses: Mapping[str, str],
                     settings: Mapping[str, object]) -> None:
  """Writes {version, addresses, settings} atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + '.tmp', 'w') as f:
    json.dump(dict(version=HOSTS_FILE_VERSION, addresses=dict(addresses),
                   settings=dict(settings)), f, indent=2, sort_keys=True)
  os.replace(path + '.tmp', path)


def read_hosts_file(path: str, wait_seconds: float = 0.,
                    poll_seconds: float = 1.) -> Dict[str, object]:
  """Reads a hosts file, waiting up to `wait_seconds` for it to appear."""
  deadline = time.time() + wait_seconds
  while not os.path.exists(path):
    if time.time() >= deadline:
      raise FileNotFoundError(f'Hosts file {path} did not appear in '
                              f'{wait_seconds:.0f}s.')
    time.sleep(poll_seconds)
  with open(path) as f:
    hosts = json.load(f)
  if hosts.get('version') != HOSTS_FILE_VERSION:
    raise ValueError(f'{path}: unsupported hosts file version '
                     f'{hosts.get("version")!r}.')
  missing = [g for g in EXPOSED_GROUPS if g not in hosts['addresses']]
  if missing:
    raise ValueError(f'{path}: no address for {missing}.')
  return hosts


def port_open(address: str, timeout_seconds: float = 3.) -> bool:
  """Whether something accepts TCP connections at host:port.

  A plain socket, not a gRPC call: a long-lived process that polls a server
  that is not up yet would otherwise sit in gRPC's reconnect backoff (up to
  minutes) after the server came up.
  """
  host, _, port = address.rpartition(':')
  try:
    with socket.create_connection((host.strip('[]'), int(port)),
                                  timeout=timeout_seconds):
      return True
  except OSError:
    return False


def table_sizes(address: str, timeout_seconds: int = 30) -> Dict[str, int]:
  return {name: info.current_size for name, info in
          reverb.Client(address).server_info(timeout=timeout_seconds).items()}


def wait_for_server(addresses: Mapping[str, str], timeout_seconds: float,
                    poll_seconds: float = 2.) -> Dict[str, int]:
  """Waits until all exposed server nodes listen; returns the table sizes."""
  deadline = time.time() + timeout_seconds
  for group in EXPOSED_GROUPS:
    while not port_open(addresses[group]):
      if time.time() >= deadline:
        raise TimeoutError(f'Nothing listens at {addresses[group]} ({group}) '
                           f'after {timeout_seconds:.0f}s.')
      time.sleep(poll_seconds)
  return table_sizes(addresses['replay'])


def group_sizes(program: lp.Program) -> Dict[str, int]:
  return {group: len(nodes) for group, nodes in program.groups.items()}


def describe_addresses(addresses: Mapping[str, str]) -> str:
  return '\n'.join(f'  {group:18s} {address}'
                   for group, address in addresses.items())

