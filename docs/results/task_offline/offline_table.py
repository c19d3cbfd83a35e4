"""Markdown tables of offline_probe.py and grip_probe.py outputs.

For offline_probe.py's files, the first table has one row per evaluation;
the second pools each file's evaluations (every start of every evaluation
counts once), which averages out how much the policy moves from one
checkpoint to the next. grip_probe.py's files (they hold `results`) get a
third, one row per finger scale.

    python3 docs/results/task_offline/offline_table.py FILE.json...
"""
import json
import os
import sys

RATES = ('reach', 'lift', 'stack')


def _rates(row) -> str:
  return ' / '.join(f'{row[key]:.0%}' for key in RATES)


def main(paths):
  results, grips = [], []
  for path in paths:
    with open(path) as f:
      result = json.load(f)
    name = os.path.basename(path)
    (grips if 'results' in result else results).append((name, result))
  print('| file | overrides | network seed | SGD steps | fresh starts | '
        'mean return | reach / lift / stack |')
  print('|---|---|---|---|---|---|---|')
  for name, result in results:
    settings = list(result['config'])
    if result.get('rollouts'):
      settings.append(f"collect_rollouts.py's rollouts, "
                      f"{result['rollout_labels']} actions")
    if result.get('demo_action_noise'):
      settings.append(f"demo action noise {result['demo_action_noise']}")
    overrides = ', '.join(settings) or 'none (the default)'
    for row in result['evaluations']:
      print(f"| {name} | {overrides} | {result['seed']} | "
            f"{row['sgd_steps']:,} | {row['episodes']} | "
            f"{row['mean_return']:.2f} | {_rates(row)} |")
  print()
  print('| file | SGD steps evaluated | evaluations x starts | mean return | '
        'reach / lift / stack |')
  print('|---|---|---|---|---|')
  for name, result in results:
    rows = result['evaluations']
    if not rows:
      continue
    episodes = sum(row['episodes'] for row in rows)
    pooled = {key: sum(row[key] * row['episodes'] for row in rows) / episodes
              for key in RATES + ('mean_return',)}
    steps = f"{rows[0]['sgd_steps']:,}-{rows[-1]['sgd_steps']:,}"
    print(f"| {name} | {steps} | {len(rows)} x {rows[0]['episodes']} | "
          f"{pooled['mean_return']:.2f} | {_rates(pooled)} |")
  if grips:
    print()
    print('| file | task learner steps | finger scale | fresh starts | '
          'mean return | reach / lift / stack |')
    print('|---|---|---|---|---|---|')
  for name, result in grips:
    for scale, row in result['results'].items():
      print(f"| {name} | {result['task_learner_steps']:,} | {scale} | "
            f"{row['episodes']} | {row['mean_return']:.2f} | {_rates(row)} |")


if __name__ == '__main__':
  main(sys.argv[1:])
