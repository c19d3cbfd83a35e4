"""Soak: the program with many actors for a long run, watched from outside.

Runs `launch/run_local.py` (features preset, demo curriculum) with
--num_imitation_actors + --num_task_actors actors for --minutes, in a fresh
workdir, with a replay capacity small enough that the imitation table fills
early (--max_replay_size), and samples every --sample_seconds:

- each node process's RSS, by node (`replay/0`, `imitation_learner/0`, ...;
  the title Launchpad gives the node's output wrapper);
- the coordinator's progress line: learner and actor steps, both tables'
  sizes.

Prints one JSON object (also written to --output): the exit status, error
lines in the nodes' output (<workdir>/logs/console.log), when the imitation
table first reached capacity and its smallest size after that (prioritized
removal must hold it there), each node's RSS when the table filled and at the
end (growth in MiB), and both learners' steps/s per window after the table
filled (min, max, first and last window). Run it alone on the machine:

  .venv/bin/python bench/bench_soak.py --minutes=20 \
      --output=docs/results/soak/soak.json

With --table, prints instead the Markdown tables of docs/reliability.md
from a stored result:

  .venv/bin/python bench/bench_soak.py --table=docs/results/soak/soak.json

Reliability issue, item 6; docs/reliability.md reports the figures.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRESS = re.compile(
    r'\[metamimic\]\s+(?P<elapsed>\d+)s\s+imitation learner steps '
    r'(?P<imitation_learner>\d+)\s+task learner steps (?P<task_learner>\d+)'
    r'\s+imitation actor steps (?P<imitation_actor>\d+)\s+task actor steps '
    r'(?P<task_actor>\d+)\s+replay imitation (?P<imitation_table>\d+) task '
    r'(?P<task_table>\d+)')
# Python tracebacks, and absl/glog lines of severity ERROR or FATAL
# ('E1126 21:32:06.094517 ...') as the nodes print them.
ERROR_LINE = re.compile(r'Traceback \(most recent call last\)|\] [EF]\d{4} ')


def node_rss(launcher_pid: int) -> dict:
  """'node title' -> RSS in MiB of each Launchpad node under the launcher."""
  rss = {}
  try:
    children = psutil.Process(launcher_pid).children(recursive=True)
  except psutil.NoSuchProcess:
    return rss
  for process in children:
    try:
      if 'process_entry.py' not in ' '.join(process.cmdline()[:3]):
        continue
      wrapper = process.parent().cmdline()
      # bash .../decorate_output <colour> <title> <command...>
      title = (wrapper[3] if len(wrapper) > 3 and
               wrapper[1].endswith('decorate_output') else str(process.pid))
      rss[title] = round(process.memory_info().rss / 2**20, 1)
    except psutil.NoSuchProcess:
      continue
  return rss


def rates(progress, key, start_s, window_s):
  """Steps/s of `key` over consecutive windows from `start_s` on."""
  points = [(p['elapsed'], p[key]) for p in progress if p['elapsed'] >= start_s]
  result, begin = [], 0
  for index in range(1, len(points)):
    if points[index][0] - points[begin][0] >= window_s:
      result.append(round((points[index][1] - points[begin][1]) /
                          (points[index][0] - points[begin][0]), 1))
      begin = index
  return result


def table(path: str) -> str:
  """Markdown: the run's verdicts, then RSS per node, from a stored result."""
  with open(path) as f:
    result = json.load(f)
  imitation = result.get('imitation_table', {})
  steps = result.get('learner_steps_per_second', {})
  final = result['final']
  lines = [
      '| figure | value |', '|---|---|',
      f"| actors | {result['actors']} |",
      f"| training seconds (coordinator) | {final['elapsed']} |",
      f"| exit status | {result['returncode']} |",
      f"| error lines in the nodes' output | {result['error_lines']} |",
      f"| learner steps, imitation / task | {final['imitation_learner']:,} / "
      f"{final['task_learner']:,} |",
      f"| actor steps, imitation / task | {final['imitation_actor']:,} / "
      f"{final['task_actor']:,} |",
      f"| imitation table capacity | {result['max_replay_size']:,} |",
      f"| imitation table full at | {imitation.get('full_at_seconds')} s |",
      f"| imitation table size after that, min-max | "
      f"{imitation.get('min_after_full', 0):,}-"
      f"{imitation.get('max_after_full', 0):,} |"]
  for key, label in (('imitation_learner', 'imitation'),
                     ('task_learner', 'task')):
    if key in steps:
      window = steps[key]
      lines.append(
          f"| {label} learner steps/s per window after that: first, last "
          f"(min-max) | {window['first']}, {window['last']} "
          f"({window['min']}-{window['max']}) |")
  # The second half of the run by wall time: what is left once start-up
  # (XLA compilation, allocator warm-up, the first replay checkpoints) is
  # over.
  samples = result.get('samples', [])
  middle = samples[-1]['wall'] / 2 if samples else 0.
  lines += ['', '| node | RSS when the table filled, MiB | at half time | '
            'at the end | growth since the table filled | in the second '
            'half | max |', '|---|---|---|---|---|---|---|']
  for node, rss in result.get('rss_mib', {}).items():
    half = next((s['rss_mib'][node] for s in samples
                 if s['wall'] >= middle and node in s['rss_mib']), rss['end'])
    lines.append(f"| {node} | {rss['at_full']:.0f} | {half:.0f} | "
                 f"{rss['end']:.0f} | {rss['growth']:+.0f} | "
                 f"{rss['end'] - half:+.0f} | {rss['max']:.0f} |")
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--minutes', type=float, default=20.)
  parser.add_argument('--num_imitation_actors', type=int, default=6)
  parser.add_argument('--num_task_actors', type=int, default=2)
  parser.add_argument('--max_replay_size', type=int, default=10_000)
  parser.add_argument('--sample_seconds', type=float, default=30.)
  parser.add_argument('--window_seconds', type=float, default=120.)
  parser.add_argument('--workdir', default='/tmp/metamimic_soak')
  parser.add_argument('--output', default=None)
  parser.add_argument('--table', default=None,
                      help='Print the Markdown tables of a stored result.')
  args = parser.parse_args()
  if args.table:
    print(table(args.table))
    return

  if os.path.exists(args.workdir):
    shutil.rmtree(args.workdir)
  command = [
      sys.executable, os.path.join(ROOT, 'launch', 'run_local.py'),
      '--demo_curriculum', f'--max_seconds={args.minutes * 60}',
      f'--num_imitation_actors={args.num_imitation_actors}',
      f'--num_task_actors={args.num_task_actors}',
      f'--max_replay_size={args.max_replay_size}',
      f'--workdir={args.workdir}']
  started = time.time()
  launcher = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
  progress, output_tail = [], []

  def read():
    for line in launcher.stdout:
      output_tail.append(line)
      del output_tail[:-40]
      match = PROGRESS.search(line)
      if match:
        progress.append({k: int(v) for k, v in match.groupdict().items()})
        print(line.rstrip(), file=sys.stderr, flush=True)

  reader = threading.Thread(target=read, daemon=True)
  reader.start()
  samples = []
  while launcher.poll() is None:
    elapsed = progress[-1]['elapsed'] if progress else None
    samples.append(dict(wall=round(time.time() - started, 1),
                        elapsed=elapsed, rss_mib=node_rss(launcher.pid)))
    time.sleep(args.sample_seconds)
  reader.join(timeout=30)

  console = os.path.join(args.workdir, 'logs', 'console.log')
  errors = []
  if os.path.exists(console):
    with open(console, errors='replace') as f:
      errors = [line.strip()[:300] for line in f if ERROR_LINE.search(line)]
  capacity = args.max_replay_size
  full_at = next((p['elapsed'] for p in progress
                  if p['imitation_table'] >= capacity), None)
  result = dict(
      command=' '.join(command[1:]), returncode=launcher.returncode,
      wall_seconds=round(time.time() - started, 1),
      actors=args.num_imitation_actors + args.num_task_actors,
      max_replay_size=capacity, error_lines=len(errors),
      first_error_lines=errors[:5], progress_lines=len(progress),
      final=progress[-1] if progress else None,
      output_tail=''.join(output_tail[-12:]) if launcher.returncode else None)
  if full_at is not None:
    after = [p for p in progress if p['elapsed'] >= full_at]
    result['imitation_table'] = dict(
        full_at_seconds=full_at,
        min_after_full=min(p['imitation_table'] for p in after),
        max_after_full=max(p['imitation_table'] for p in after))
    # Per node: its first sample once the table was full and its last one
    # (actors stop before the learners and replay at the end).
    after_full = [s for s in samples
                  if s['elapsed'] is not None and s['elapsed'] >= full_at]
    result['rss_mib'] = {}
    for node in sorted({n for s in after_full for n in s['rss_mib']}):
      values = [s['rss_mib'][node] for s in after_full if node in s['rss_mib']]
      result['rss_mib'][node] = dict(
          at_full=values[0], end=values[-1],
          growth=round(values[-1] - values[0], 1), max=max(values),
          samples=len(values))
    result['learner_steps_per_second'] = {}
    for key in ('imitation_learner', 'task_learner'):
      windows = rates(progress, key, full_at, args.window_seconds)
      if windows:
        result['learner_steps_per_second'][key] = dict(
            windows=windows, first=windows[0], last=windows[-1],
            min=min(windows), max=max(windows))
  result['samples'] = samples
  text = json.dumps(result, indent=1)
  if args.output:
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, 'w') as f:
      f.write(text + '\n')
  print(text)


if __name__ == '__main__':
  main()
