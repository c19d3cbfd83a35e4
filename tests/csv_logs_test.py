"""csv_logs.read_csv_log on a log that two Acme CSVLoggers share, as a node
group's processes (the imitation actors) do."""

import os

from acme.utils import loggers

from acme_metamimic import csv_logs


def test_shared_log_reads_every_row_once(tmp_path):
  workdir = str(tmp_path)
  # Both open the file before either writes, as actors starting together do.
  first, second = (
      loggers.CSVLogger(workdir, label='imitation_actor', add_uid=False,
                        time_delta=0., flush_every=1) for _ in range(2))
  first.write({'episode_length': 10, 'imitation_actor_steps': 10})
  second.write({'episode_length': 20, 'imitation_actor_steps': 30})
  first.write({'episode_length': 30, 'imitation_actor_steps': 60})
  first.close()
  second.close()

  with open(os.path.join(workdir, 'logs', 'imitation_actor', 'logs.csv')) as f:
    lines = f.read().splitlines()
  # The cause pinned: each logger wrote the header at its own position 0.
  assert lines.count('episode_length,imitation_actor_steps') == 2

  rows = csv_logs.read_csv_log(workdir, 'imitation_actor')
  assert rows == [
      {'episode_length': 10., 'imitation_actor_steps': 10.},
      {'episode_length': 20., 'imitation_actor_steps': 30.},
      {'episode_length': 30., 'imitation_actor_steps': 60.},
  ]


def test_missing_log_reads_empty(tmp_path):
  assert csv_logs.read_csv_log(str(tmp_path), 'evaluator_task') == []
