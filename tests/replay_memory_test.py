"""The replay memory estimate: its arithmetic, its refusal, and a real server."""

import json
import os
import subprocess
import sys

from acme import specs
import numpy as np
import pytest

from acme_metamimic import config as config_lib
from acme_metamimic import presets
from acme_metamimic import replay_memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def features_spec():
  return specs.make_environment_spec(presets.make_environment('features', 0))


def test_step_bytes_count_every_column(features_spec):
  observation_floats = sum(int(np.prod(s.shape))
                           for s in features_spec.observations.values())
  assert observation_floats == 18 + 3 + 38  # body, hand_to_target, features.
  # Observation, 9 actions, then reward, discount and Acme's n-step return
  # and total discount: one float each for the task actor, two (imitation
  # and task) for the imitation actor, whose observation adds the goal.
  assert replay_memory.step_bytes(features_spec, False) == 4 * (59 + 9 + 4)
  assert replay_memory.step_bytes(features_spec, True) == 4 * (
      2 * 59 + 9 + 8)
  # Each observation key (and goal key), the action, and those four scalars
  # per reward key are Reverb columns of their own.
  assert replay_memory.step_columns(features_spec, False) == 3 + 1 + 4
  assert replay_memory.step_columns(features_spec, True) == 6 + 1 + 8
  assert replay_memory.stored_step_bytes(features_spec, True) == (
      4 * (2 * 59 + 9 + 8) + 15 * replay_memory.COLUMN_OVERHEAD)


def test_only_images_count_compressed():
  image = specs.Array((8, 8, 3), np.uint8, name='image')
  body = specs.Array((5,), np.float32, name='body')
  spec = specs.EnvironmentSpec(
      observations={'image': image, 'body': body},
      actions=specs.BoundedArray((2,), np.float32, -1., 1.),
      rewards=specs.Array((), np.float32),
      discounts=specs.BoundedArray((), np.float32, 0., 1.))
  scalars = 4 * 4  # Reward, discount, n-step return, total discount.
  assert replay_memory.step_bytes(spec, False) == 192 + 20 + 8 + scalars
  assert replay_memory.stored_step_bytes(spec, False) == round(
      192 * replay_memory.IMAGE_COMPRESSION + 20 + 8 + scalars +
      (2 + 1 + 4) * replay_memory.COLUMN_OVERHEAD)


def test_estimate_counts_both_tables_at_capacity(features_spec):
  config = config_lib.features_config(max_replay_size=1000)
  per_item = replay_memory.stored_step_bytes(features_spec, True)
  replay = replay_memory.estimate(features_spec, config)
  assert replay.table_bytes == {config_lib.IMITATION_TABLE: 1000 * per_item,
                                config_lib.TASK_TABLE: 1000 * per_item}
  task_only = replay_memory.estimate(features_spec, config,
                                     imitation_table=False)
  assert task_only.table_bytes == {
      config_lib.TASK_TABLE:
          1000 * replay_memory.stored_step_bytes(features_spec, False)}
  # D4PGfD: its demo table, of task items, at the same capacity.
  with_demos = replay_memory.estimate(features_spec, config,
                                      imitation_table=False, demo_table=True)
  assert with_demos.table_bytes == {
      name: task_only.table_bytes[config_lib.TASK_TABLE]
      for name in (config_lib.TASK_TABLE, config_lib.DEMO_TABLE)}


def test_too_large_a_replay_is_refused_with_both_figures_and_the_flag(
    features_spec):
  config = config_lib.features_config(max_replay_size=10_000_000)
  replay = replay_memory.estimate(features_spec, config)
  replay_memory.check_fits(replay, available=replay.total_bytes)
  with pytest.raises(replay_memory.ReplayMemoryError) as error:
    replay_memory.check_fits(replay, available=2 << 30)
  message = str(error.value)
  assert f'{replay.total_bytes / 2**30:.2f} GiB at 10,000,000 items' in message
  assert '2.00 GiB of memory available' in message
  assert 'Lower --max_replay_size (at most about' in message


def test_run_local_refuses_before_recording_or_touching_the_workdir(
    tmp_path):
  workdir, demos = tmp_path / 'workdir', tmp_path / 'demos'
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'run_local.py'),
       f'--workdir={workdir}', f'--demos={demos}/train',
       f'--validation_demos={demos}/validation',
       '--max_replay_size=1000000000000'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert 'at 1,000,000,000,000 items per table' in result.stderr, (
      result.stderr[-2000:])
  assert 'Lower --max_replay_size' in result.stderr
  assert not workdir.exists() and not demos.exists()


def test_estimate_is_within_a_quarter_of_a_filled_servers_memory():
  # The real Reverb server in its own process, both tables filled past
  # capacity through the real adders, prioritized removal at work
  # (bench/bench_replay_memory.py). 5,000 items per table, about 60 MiB, well
  # above the allocator's noise; `COLUMN_OVERHEAD` was fitted at 20,000. 1.5
  # capacities written: both tables have removed items by then.
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'bench', 'bench_replay_memory.py'),
       '--max_replay_size=5000', '--fill=1.5', '--recorded_steps=1500'],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  measured = json.loads(result.stdout)
  assert measured['table_sizes'] == {config_lib.IMITATION_TABLE: 5000,
                                     config_lib.TASK_TABLE: 5000}
  assert 0.75 <= measured['estimate_over_measured'] <= 1.25, measured
