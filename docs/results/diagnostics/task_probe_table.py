"""Markdown table of `launch/diagnose.py --learner=task` outputs (issue 33).

Not project code: kept beside the JSONs it reads.

    python docs/results/diagnostics/task_probe_table.py \
        docs/results/imitation_levers_60min/*/task_diagnostics.json
"""
import json
import os
import sys

# docs/results: file names are given relative to it.
RESULTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HEADER = (
    '| file | learner steps, imitation / task | imitation rollouts: task '
    'return / stacked | rank corr. Q vs task return-to-go | Q, imitation / '
    'task action (true return-to-go) | Q prefers the imitation action | '
    'action distance | handed reached: holds / lifts / stacks, return (the '
    "imitation's) | handed lifted: holds / lifts / stacks, return (the "
    "imitation's) |")


def _handover(part):
  return (f'{part["holds"]:.0%} / {part["lifts"]:.0%} / {part["stacks"]:.0%}'
          f', {part["task_return"]:.1f} ({part["imitation_task_return"]:.1f})'
          f' of {part["handovers"]:.0f}')


def row(path):
  with open(path) as f:
    result = json.load(f)
  steps = result['source']['learner_steps']
  value, rollouts = result['value'], result['imitation']
  return (f'| {os.path.relpath(path, RESULTS)} | '
          f'{steps["imitation_learner"]:,} / {steps["task_learner"]:,} | '
          f'{rollouts["task_return"]:.1f} / {rollouts["stacked"]:.0%} of '
          f'{rollouts["num_rollouts"]:.0f} | {value["q_vs_return"]:.3f} | '
          f'{value["q_imitation_action"]:.1f} / {value["q_task_action"]:.1f} '
          f'({value["return_to_go"]:.1f}) | '
          f'{value["q_prefers_imitation_action"]:.0%} | '
          f'{value["action_distance"]:.2f} | '
          f'{_handover(result["handover"]["reached"])} | '
          f'{_handover(result["handover"]["lifted"])} |')


if __name__ == '__main__':
  print(HEADER)
  print('|' + '---|' * HEADER.count(' | ') + '---|')
  for name in sys.argv[1:]:
    print(row(name))
