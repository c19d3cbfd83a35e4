"""The task evaluator's curve of a stored run, in sixths of its episodes.

Not project code: kept beside the runs it reads. Each argument is a stored
run directory; its logs/evaluator_task/logs.csv holds one row per task
evaluator episode (greedy task policy from a training demo's start state).
Prints one markdown row per run: the mean episode return in each sixth of
the rows (one episode about every 30 s, so each sixth is about a sixth of
the wall time), the share of the last half's episodes with any task
reward, the largest return, and the task learner step of the last episode
against the run's final count (summary.json): a curve that ends early
(session 25's seed 2, whose evaluator died half-way) says so. The summary
is written while the evaluator still runs, so its last episode can land a
few hundred steps after the final count (85,920 of 85,892, session 27).

    python3 docs/results/task_levers_60min/evaluator_curve.py \
        docs/results/imitation_levers_60min/armS_seed1 \
        docs/results/task_levers_60min/arm*_seed1
"""
import csv
import json
import os
import sys

SIXTHS = 6

print('| run | episodes | mean return per sixth of the run | last half: '
      'episodes rewarded | max return | last episode at task learner step |')
print('|---|---|---|---|---|---|')
for run in sys.argv[1:]:
  path = os.path.join(run, 'logs', 'evaluator_task', 'logs.csv')
  with open(path) as f:
    rows = [r for r in csv.DictReader(f)
            if r['episode_return'] != 'episode_return']
  returns = [float(r['episode_return']) for r in rows]
  if len(returns) < SIXTHS:
    raise SystemExit(f'{path}: {len(returns)} episodes, fewer than {SIXTHS}')
  with open(os.path.join(run, 'summary.json')) as f:
    final_steps = json.load(f)['counts']['task_learner_steps']
  last_steps = float(rows[-1]['task_learner_steps'])
  bounds = [round(i * len(returns) / SIXTHS) for i in range(SIXTHS + 1)]
  means = [sum(returns[a:b]) / (b - a) for a, b in zip(bounds, bounds[1:])]
  last_half = returns[len(returns) // 2:]
  rewarded = sum(r > 0 for r in last_half) / len(last_half)
  print(f'| {run} | {len(returns)} | '
        f'{" / ".join(f"{m:.1f}" for m in means)} | {rewarded:.0%} | '
        f'{max(returns):.1f} | {last_steps:,.0f} of {final_steps:,.0f} '
        f'({last_steps / final_steps:.0%}) |')
