"""What the replay tables hold at capacity, known before anything starts.

Both tables live on one Reverb server. An imitation actor appends each step once
(observation, goal, action, rewards, discounts and Acme's N-step return and
discount columns) and makes one item in each table from it; a task actor
appends steps without a goal for the task table alone. Reverb keeps a step's
chunk while any item of either table references it, so at capacity the server
holds, at most, one imitation step per imitation item plus one step per task
item (the two tables remove in different orders: prioritized for imitation,
FIFO for task, so their items soon stop sharing steps). An item's o_{t+n} is
another item's o_t, except at the ends of episodes.

`estimate` counts those bytes from the tables' real item shapes, taking the
worst case for the task table (every item from an imitation actor, goal
included):

    bytes = 2 x max_size x (data + COLUMN_OVERHEAD x columns)

per imitation step, where images count at `IMAGE_COMPRESSION` of their size
(Reverb compresses chunks) and every other array in full. `check_fits` refuses
a run whose estimate exceeds the memory available, before any node starts or
demo is recorded.

The two constants are fitted on `bench/bench_replay_memory.py` (the Reverb
server's RSS growth with both tables filled past capacity through the real
adders, prioritized removal at work); docs/reliability.md has the figures and
the checks at other capacities.
"""

import dataclasses
from typing import Mapping, Optional

from acme import specs
import numpy as np
import psutil
import tree

from acme_metamimic import config as config_lib
from acme_metamimic.environments import imitation

GIB = 1 << 30
# Reverb's cost per column of each stored step beyond the data: every column
# (each observation key, the goal's keys, action, and per reward key the
# reward, discount, n-step return and total discount) is chunked on its own,
# in short chunks (auto-tuned up to N + 1 steps), and each chunk, its
# references and the items' bookkeeping cost about this much. Fitted on
# bench/bench_replay_memory.py (features preset, 20,000 items per table:
# 249.5 MiB measured, 6.5 KB per item against 540 bytes of data).
COLUMN_OVERHEAD = 400
# Reverb compresses chunks (zstd). Rendered frames shrink to about this share
# of their bytes; float32 features barely shrink and count in full. Fitted on
# bench/bench_replay_memory.py (vision preset, 3,000 items per table: 220 MiB
# measured against 98,844 bytes of data per imitation step).
IMAGE_COMPRESSION = 0.32
# Acme's N-step adders append two more columns per step (n-step return and
# total discount), one float per reward key.
_NSTEP_COLUMNS = 2


def _is_image(spec) -> bool:
  return np.dtype(spec.dtype) == np.uint8 and len(spec.shape) == 3


def _bytes(spec_tree, compressed: bool = False) -> float:
  """Bytes of every leaf; images times `IMAGE_COMPRESSION` if `compressed`."""
  total = 0.
  for spec in tree.flatten(spec_tree):
    size = int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(
        spec.dtype).itemsize
    total += size * (IMAGE_COMPRESSION if compressed and _is_image(spec)
                     else 1.)
  return total


def _step_spec(environment_spec: specs.EnvironmentSpec,
               goal_conditioned: bool):
  """(observation and action specs, reward keys) of one appended step."""
  if goal_conditioned:
    spec = imitation.imitation_environment_spec(environment_spec)
    return (spec.observations, spec.actions), 2
  return (environment_spec.observations, environment_spec.actions), 1


def step_bytes(environment_spec: specs.EnvironmentSpec,
               goal_conditioned: bool) -> int:
  """Data bytes of one appended step (an imitation actor's when conditioned).

  Args:
    environment_spec: the plain environment's spec.
    goal_conditioned: count the goal and both rewards and discounts (imitation
      and task), as the imitation actors' single writer appends them.
  """
  arrays, reward_keys = _step_spec(environment_spec, goal_conditioned)
  scalars = reward_keys * (2 + _NSTEP_COLUMNS) * np.dtype(np.float32).itemsize
  return int(_bytes(arrays)) + scalars


def step_columns(environment_spec: specs.EnvironmentSpec,
                 goal_conditioned: bool) -> int:
  """Reverb columns of one appended step (see `COLUMN_OVERHEAD`)."""
  arrays, reward_keys = _step_spec(environment_spec, goal_conditioned)
  return len(tree.flatten(arrays)) + reward_keys * (2 + _NSTEP_COLUMNS)


def stored_step_bytes(environment_spec: specs.EnvironmentSpec,
                      goal_conditioned: bool) -> int:
  """What the server holds per stored step.

  The data (images compressed by `IMAGE_COMPRESSION`) plus `COLUMN_OVERHEAD`
  per column.
  """
  arrays, _ = _step_spec(environment_spec, goal_conditioned)
  compressed = (step_bytes(environment_spec, goal_conditioned) -
                _bytes(arrays) + _bytes(arrays, compressed=True))
  return int(round(compressed + COLUMN_OVERHEAD *
                   step_columns(environment_spec, goal_conditioned)))


@dataclasses.dataclass(frozen=True)
class ReplayEstimate:
  """Bytes each table holds at capacity (see the module docstring)."""

  table_bytes: Mapping[str, int]
  max_size: int

  @property
  def total_bytes(self) -> int:
    return sum(self.table_bytes.values())

  def describe(self) -> str:
    tables = ', '.join(f'{name} {size / GIB:.2f} GiB'
                       for name, size in sorted(self.table_bytes.items()))
    return (f'{self.total_bytes / GIB:.2f} GiB at {self.max_size:,} items per '
            f'table ({tables})')


def estimate(environment_spec: specs.EnvironmentSpec,
             config: config_lib.MetaMimicConfig,
             imitation_table: bool = True,
             demo_table: bool = False) -> ReplayEstimate:
  """The replay footprint at `config.max_replay_size` items per table.

  Args:
    environment_spec: the plain environment's spec.
    config: the run's configuration (its `max_replay_size`).
    imitation_table: whether the run has imitation actors (the task-only
      baselines do not: their task items carry no goal).
    demo_table: whether the run has D4PGfD's demo table. Its capacity is
      `max_replay_size` too (`MetaMimicBuilder.check_demo_capacity`), counted
      in full: the demos are recorded after this check. The committed 20
      training demos (data/demos_train_features) make 3,933 items, 13 MiB
      of the features preset's 0.33 GiB at 100,000.
  """
  imitation_step = stored_step_bytes(environment_spec, goal_conditioned=True)
  task_step = stored_step_bytes(environment_spec, goal_conditioned=False)
  per_item = {
      config_lib.IMITATION_TABLE: imitation_step,
      config_lib.TASK_TABLE: imitation_step if imitation_table else task_step,
  }
  if not imitation_table:
    del per_item[config_lib.IMITATION_TABLE]
  if demo_table:  # Demo items carry no goal.
    per_item[config_lib.DEMO_TABLE] = task_step
  return ReplayEstimate(
      table_bytes={name: size * config.max_replay_size
                   for name, size in per_item.items()},
      max_size=config.max_replay_size)


class ReplayMemoryError(ValueError):
  """The replay tables would not fit in the memory available."""


def check_fits(replay: ReplayEstimate, available: Optional[int] = None,
               flag: str = '--max_replay_size') -> None:
  """Raises `ReplayMemoryError` if `replay` exceeds the available memory.

  Args:
    replay: the estimate.
    available: bytes available; defaults to psutil's `available` (free memory
      plus what the kernel can reclaim), read now.
    flag: the flag that lowers the capacity, named in the error.
  """
  if available is None:
    available = psutil.virtual_memory().available
  if replay.total_bytes > available:
    fitting = int(replay.max_size * available / replay.total_bytes)
    raise ReplayMemoryError(
        f'The replay tables would hold {replay.describe()}, more than the '
        f'{available / GIB:.2f} GiB of memory available on this machine. '
        f'Lower {flag} (at most about {fitting:,} fits, before the other '
        'nodes take their share).')
