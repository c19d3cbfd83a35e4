"""Markdown tables of feeder_probe.py and handover_probe.py outputs.

    python3 docs/results/task_feeder/feeder_table.py \\
        docs/results/task_feeder/*.json

Each file is read by its shape: a feeder probe's holds `arms`, a handover
probe's `results` (and, since session 33's second pass, `cloning_fit`).
"""
import json
import os
import sys


def feeder_rows(path, data):
  for arm in data['arms']:
    fractions = arm['fraction_by_stage']
    per_thousand = 1000. * arm['stack_events'] / max(arm['steps'], 1)
    yield (f"| {os.path.basename(path)} | {arm['curriculum_max_step']} | "
           f"{arm['episodes']} | {arm['steps']:,} | "
           f"{arm['mean_length']:.1f} | {arm['early_termination_rate']:.0%} | "
           + ' / '.join(f'{fractions[k]:.1%}' for k in
                        ('none', 'reached', 'lifted', 'stacked'))
           + f" | {arm['stack_events']} ({per_thousand:.1f}) | "
           f"{arm['episodes_with_a_stack']:.0%} | "
           f"{arm['mean_task_return']:.2f} |")


def handover_rows(path, data):
  for demos, result in data['results'].items():
    tracker = result['tracker']
    cells = []
    for stage in ('reached', 'lifted'):
      h = result['handover'][stage]
      cells.append(f"{h['holds']:.0%} / {h['lifts']:.0%} / {h['stacks']:.0%}"
                   f", {h['task_return']:.1f} ({h['imitation_task_return']:.1f})"
                   f" of {h['handovers']:.0f}")
    yield (f"| {os.path.basename(path)} | {data['task_learner_steps']:,} | "
           f"{os.path.basename(demos)} | {tracker['demos']} | "
           f"{tracker['mean_task_return']:.1f} / {tracker['lift']:.0%} / "
           f"{tracker['stack']:.0%} | " + ' | '.join(cells) + ' |')


def fit_rows(path, data):
  for demos, result in data['results'].items():
    for stage, fit in result.get('cloning_fit', {}).items():
      yield (f"| {os.path.basename(path)} | {os.path.basename(demos)} | "
             f"{stage} | {fit['states']:,} | {fit['arm_error']:.3f} | "
             f"{fit['finger_error']:.3f} | "
             f"{fit['policy_finger_command']:+.3f} / "
             f"{fit['tracker_finger_command']:+.3f} |")


def main(paths):
  feeders, handovers, fits = [], [], []
  for path in paths:
    with open(path) as f:
      data = json.load(f)
    if 'arms' in data:
      feeders.extend(feeder_rows(path, data))
    elif 'results' in data:
      handovers.extend(handover_rows(path, data))
      fits.extend(fit_rows(path, data))
    else:
      raise SystemExit(f'{path}: neither a feeder nor a handover probe '
                       'output (no "arms", no "results").')
  if feeders:
    print('| file | curriculum_max_step | episodes | steps | mean length | '
          'ended early | steps at none / reached / lifted / stacked | '
          'stacking events (per 1,000 steps) | episodes with a stacked step | '
          'mean task return |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    print('\n'.join(feeders))
  if handovers:
    if feeders:
      print()
    print('| file | task learner steps | demos | tracker rollouts | tracker: '
          'task return / lift / stack | handed reached: holds / lifts / '
          'stacks, return (the tracker\'s) | handed lifted: holds / lifts / '
          'stacks, return (the tracker\'s) |')
    print('|---|---|---|---|---|---|---|')
    print('\n'.join(handovers))
  if fits:
    print()
    print('| file | demos | tracker\'s reward stage | states | mean abs. '
          'action difference, arm | fingers | mean finger command, task '
          'policy / tracker |')
    print('|---|---|---|---|---|---|---|')
    print('\n'.join(fits))


if __name__ == '__main__':
  main(sys.argv[1:])
