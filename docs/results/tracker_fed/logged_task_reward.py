"""How often the imitation actors' logged episodes earned task reward.

Not project code: kept beside the runs it reads. Each argument is a stored
run directory (its logs/imitation_actor/logs.csv, one row per logged
episode, every few seconds).

    python docs/results/tracker_fed/logged_task_reward.py \
        docs/results/tracker_fed/armF_seed0 docs/results/imitation_levers/armC_seed0
"""
import csv
import os
import sys

for run in sys.argv[1:]:
  with open(os.path.join(run, 'logs', 'imitation_actor', 'logs.csv')) as f:
    rows = [r for r in csv.DictReader(f) if r['steps'] != 'steps']
  lengths = [float(r['steps']) for r in rows]
  returns = [float(r['task_return']) for r in rows]
  print(f'| {run} | {len(rows)} | {sum(lengths) / len(lengths):.1f} | '
        f'{sum(t > 0 for t in returns) / len(returns):.0%} | '
        f'{max(returns):.1f} |')
