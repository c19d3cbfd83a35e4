"""Workdir checks made before a program starts: place, identity, checkpoints.

A run resumes from whatever its workdir holds, so a workdir that cannot hold
anything, or holds another set-up's state, must be refused before any node
starts or any demo is recorded, with the path and what is wrong:

- `check_location`: the workdir is (or can be made) a writable directory;
  `--workdir=/dev/null/x` used to fail only after the demos were recorded.
- `prepare`: the workdir's `run.json` (written on its first run) names the
  preset, the baseline, every learner variable's shape and each Reverb
  table's item signature; a run whose own differ is refused, saying which.
  Every learner and counter checkpoint must read back whole: TensorFlow
  checks each tensor's CRC, so a truncated or overwritten file is found here
  rather than in a node that then dies mid-start. `fresh=True` (run_local's
  `--fresh`) moves the old workdir aside, never deletes it.

Reverb's replay checkpoints are not read here: Reverb loads only a
checkpoint whose `DONE` marker was written after all its files.
"""

import datetime
import json
import os
import shutil
from typing import Any, Dict, List, Mapping, Optional

import tensorflow as tf

RUN_FILE = 'run.json'
# What launch/evaluate.py writes there when a run is evaluated (run_local
# --evaluate, compare_baselines).
EVALUATION_FILE = 'evaluation.json'
CHECKPOINTS = 'checkpoints'
_MAX_LISTED = 6


class WorkdirError(ValueError):
  """A workdir the program cannot start in; the message names the path."""


def check_location(workdir: str) -> None:
  """Raises WorkdirError unless `workdir` is or can be a writable directory."""
  path = os.path.abspath(workdir)
  if os.path.exists(path) and not os.path.isdir(path):
    raise WorkdirError(f'--workdir={workdir}: {path} exists and is not a '
                       'directory.')
  parent = path
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise WorkdirError(f'--workdir={workdir}: {parent} is not a directory, so '
                       f'{path} cannot be made.')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise WorkdirError(f'--workdir={workdir}: {parent} is not writable.')


def _differences(workdir_value: Any, run_value: Any, key: str) -> List[str]:
  if isinstance(workdir_value, dict) and isinstance(run_value, dict):
    lines = []
    names = set(workdir_value) | set(run_value)
    # Plain values (preset, baseline) before the nested ones (each variable).
    for name in sorted(names, key=lambda n: (
        isinstance(workdir_value.get(n), dict) or
        isinstance(run_value.get(n), dict), n)):
      lines += _differences(workdir_value.get(name), run_value.get(name),
                            f'{key}.{name}' if key else name)
    return lines
  if workdir_value == run_value:
    return []
  return [f'{key}: workdir {workdir_value!r}, this run {run_value!r}']


def signature_differences(workdir_signature: Mapping[str, Any],
                          run_signature: Mapping[str, Any]) -> List[str]:
  """'key: workdir X, this run Y' for every leaf that differs."""
  return _differences(json.loads(json.dumps(workdir_signature)),
                      json.loads(json.dumps(run_signature)), '')


def check_checkpoints(workdir: str) -> None:
  """Raises WorkdirError naming the first checkpoint that does not read back.

  Reads every tensor of the latest checkpoint under <workdir>/checkpoints/*
  (the learners and the counter; a few MB for the features networks).
  """
  root = os.path.join(workdir, CHECKPOINTS)
  if not os.path.isdir(root):
    return
  for label in sorted(os.listdir(root)):
    directory = os.path.join(root, label)
    if not os.path.isdir(directory) or not os.listdir(directory):
      continue
    try:
      latest = tf.train.latest_checkpoint(directory)
    except (tf.errors.OpError, ValueError) as e:
      raise WorkdirError(
          f'{directory}/checkpoint cannot be read ({_first_line(e)}); pass '
          '--fresh to move this workdir aside and start over.') from e
    if latest is None:
      raise WorkdirError(
          f'{directory} holds files but no complete checkpoint; pass --fresh '
          'to move this workdir aside and start over.')
    try:
      reader = tf.train.load_checkpoint(latest)
      for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)
    except (tf.errors.OpError, ValueError) as e:
      raise WorkdirError(
          f'checkpoint {latest} is corrupt ({_first_line(e)}); pass --fresh to '
          'move this workdir aside and start over.') from e


def _first_line(error: Exception) -> str:
  return (str(error).strip().splitlines() or [type(error).__name__])[0]


def prepare(workdir: str, signature: Mapping[str, Any],
            fresh: bool = False) -> Optional[str]:
  """Makes `workdir` ready for a run with `signature`, or raises WorkdirError.

  Returns where an old workdir was moved (`fresh=True`), else None. A workdir
  with checkpoints but no run.json (made before run.json existed) is adopted
  as it is.
  """
  check_location(workdir)
  moved = None
  if fresh and os.path.isdir(workdir) and os.listdir(workdir):
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    moved = f'{workdir.rstrip(os.sep)}.old-{stamp}'
    shutil.move(workdir, moved)
  os.makedirs(workdir, exist_ok=True)
  run_file = os.path.join(workdir, RUN_FILE)
  if os.path.exists(run_file):
    try:
      with open(run_file) as f:
        recorded = json.load(f)
    except (OSError, ValueError) as e:
      raise WorkdirError(f'{run_file} cannot be read ({_first_line(e)}); pass '
                         '--fresh to move this workdir aside and start over.'
                         ) from e
    differences = signature_differences(recorded, signature)
    if differences:
      listed = differences[:_MAX_LISTED]
      if len(differences) > _MAX_LISTED:
        listed.append(f'... and {len(differences) - _MAX_LISTED} more')
      raise WorkdirError(
          f'{workdir} was made by another set-up, so it cannot be resumed '
          f'(from {run_file}):\n  ' + '\n  '.join(listed) + '\nUse another '
          '--workdir, or pass --fresh to move this one aside and start over.')
  check_checkpoints(workdir)
  if not os.path.exists(run_file):
    with open(run_file, 'w') as f:
      json.dump(signature, f, indent=1, sort_keys=True)
  return moved


def variable_shapes(modules: Mapping[str, Any]) -> Dict[str, List[int]]:
  """'module/variable name' -> shape, for Sonnet modules by name."""
  return {f'{name}/{variable.name}': variable.shape.as_list()
          for name, module in modules.items()
          for variable in module.variables}
