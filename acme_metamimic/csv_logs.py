"""Reads the per-node CSV logs that Acme's CSVLogger writes under a workdir.

Standard library only, so report scripts can read logs without TensorFlow.
"""

import csv
import os
from typing import Dict, List


def read_csv_log(workdir: str, label: str) -> List[Dict[str, float]]:
  """Numeric columns of <workdir>/logs/<label>/logs.csv (empty if missing)."""
  path = os.path.join(workdir, 'logs', label, 'logs.csv')
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for row in csv.DictReader(f):
      values = {}
      for key, value in row.items():
        try:
          values[key] = float(value)
        except (TypeError, ValueError):
          pass
      rows.append(values)
  return rows
