"""How much one episode moves the training demos' imitation percentage.

Not project code: a check kept beside the note it backs (docs/fidelity.md,
"Session 31"). For each evaluation.json given, the imitation share of the
demos' task reward on the training split as evaluate_imitation computes it
(the mean over rollouts of 100 x rollout task return / demo task return),
the same without the rollout with the largest share, and the per-rollout
shares.

    python3 docs/results/imitation_train_spread/spread.py \\
        docs/results/task_levers_60min/armB10_seed*/evaluation.json
"""
import json
import sys


def main(paths):
  print('| run | rollouts | task reward, % of the demos\' | without the '
        'largest | largest | per rollout |')
  print('|---|---|---|---|---|---|')
  for path in paths:
    with open(path) as f:
      episodes = json.load(f)['episodes']['train']
    shares = [100. * e['imitation_task_return'] / e['demo_task_return']
              for e in episodes]
    rest = sorted(shares)[:-1]
    print(f"| {path.split('/')[-2]} | {len(shares)} | "
          f"{sum(shares) / len(shares):.1f} | {sum(rest) / len(rest):.1f} | "
          f"{max(shares):.0f} | {' '.join(f'{s:.0f}' for s in shares)} |")


if __name__ == '__main__':
  main(sys.argv[1:])
