"""Reads the per-node CSV logs that Acme's CSVLogger writes under a workdir.

Standard library only, so report scripts can read logs without TensorFlow.
"""

import csv
import os
from typing import Dict, List


def csv_log_path(workdir: str, label: str) -> str:
  """<workdir>/logs/<label>/logs.csv, where a node's CSVLogger writes."""
  return os.path.join(workdir, 'logs', label, 'logs.csv')


def read_csv_log(workdir: str, label: str) -> List[Dict[str, float]]:
  """Numeric columns of <workdir>/logs/<label>/logs.csv (empty if missing).

  A node group's processes (the imitation actors) share one log. Acme's
  CSVLogger writes the header when its own file position is 0, and each
  opens the file before its first row, so two that start together both
  write one: a 60-minute run's imitation actor log held the header at lines
  1 and 3. Such repeated header rows are skipped, not read as empty rows.
  """
  path = csv_log_path(workdir, label)
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for row in csv.DictReader(f):
      if all(key == value for key, value in row.items()):
        continue
      values = {}
      for key, value in row.items():
        try:
          values[key] = float(value)
        except (TypeError, ValueError):
          pass
      rows.append(values)
  return rows
