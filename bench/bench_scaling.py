"""Scaling of the local_mp program with the number of imitation actors.

Runs `launch/run_local.py` (the README's main job) with 1, 2 and 4 imitation
actors and no task actors, for --seconds of training each, and prints one JSON
object: environment steps/s of all imitation actors together (measured from
the coordinator's progress lines, between the first line with actor steps and
the last one, so start-up is excluded), learner steps/s, the ratio to the
1-actor run, and the peak RSS of every node group (MiB, per node).

    .venv/bin/python bench/bench_scaling.py --seconds=60 --actors=1,2,4
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRESS = re.compile(r'\[metamimic\]\s+(\d+)s\s+imitation learner steps (\d+)'
                      r'.*imitation actor steps (\d+)')
TITLE = re.compile(r'decorate_output \d+ (\w+)/\d+')


def _group_rss(launcher_pid: int):
  """Peak-able snapshot: node group -> list of RSS (MiB) of its processes."""
  groups = collections.defaultdict(list)
  for process in psutil.Process(launcher_pid).children(recursive=True):
    try:
      title = TITLE.search(' '.join(process.parent().cmdline()))
      if title and 'process_entry.py' in ' '.join(process.cmdline()):
        groups[title.group(1)].append(process.memory_info().rss / 2**20)
    except psutil.Error:
      continue
  return groups


def run(num_actors: int, seconds: float, demos: str, workdir: str):
  """Runs the program once; returns its throughput and memory figures."""
  os.makedirs(workdir, exist_ok=True)
  log_path = os.path.join(workdir, 'launcher.log')
  command = [sys.executable, os.path.join(ROOT, 'launch', 'run_local.py'),
             f'--workdir={workdir}', f'--max_seconds={seconds}',
             f'--num_imitation_actors={num_actors}', '--num_task_actors=0',
             f'--demos={demos}/train', f'--validation_demos={demos}/validation',
             '--num_demos=10', '--num_validation_demos=4']
  peak = collections.defaultdict(float)
  with open(log_path, 'w') as log:
    launcher = subprocess.Popen(command, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT)
    while launcher.poll() is None:
      for group, values in _group_rss(launcher.pid).items():
        peak[group] = max(peak[group], max(values))
      time.sleep(2)
  with open(log_path) as log:
    lines = [tuple(map(int, m.groups())) for m in PROGRESS.finditer(log.read())]
  acting = [line for line in lines if line[2] > 0]
  if launcher.returncode != 0 or len(acting) < 2:
    raise RuntimeError(f'run with {num_actors} actors failed; see {log_path}')
  (t0, learner0, steps0), (t1, learner1, steps1) = acting[0], acting[-1]
  return dict(env_steps_per_s=round((steps1 - steps0) / (t1 - t0), 1),
              learner_steps_per_s=round((learner1 - learner0) / (t1 - t0), 1),
              measured_seconds=t1 - t0,
              peak_rss_mib_per_node={k: round(v) for k, v in peak.items()})


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--seconds', type=float, default=60.)
  parser.add_argument('--actors', default='1,2,4')
  args = parser.parse_args()
  results = {}
  with tempfile.TemporaryDirectory() as root:
    for num_actors in map(int, args.actors.split(',')):
      results[num_actors] = run(num_actors, args.seconds,
                                os.path.join(root, 'demos'),
                                os.path.join(root, f'run_{num_actors}'))
  base = results[min(results)]['env_steps_per_s']
  print(json.dumps(dict(
      results=results,
      env_steps_ratio_to_fewest_actors={
          n: round(r['env_steps_per_s'] / base, 2) for n, r in results.items()},
      cpus=os.cpu_count(), seconds=args.seconds)))


if __name__ == '__main__':
  main()
