"""Markdown table of noise_probe.py's JSON files, one row per file and noise.

Not project code: kept beside the files it reads.

    python3 docs/results/task_noise/noise_table.py docs/results/task_noise/*.json
"""
import json
import sys

print('| file | task learner steps | noise | fresh starts | reach / lift / '
      'stack | mean return | mean steps lifted |')
print('|---|---|---|---|---|---|---|')
for path in sys.argv[1:]:
  with open(path) as f:
    probe = json.load(f)
  for name, row in probe['results'].items():
    print(f'| {path} | {probe["task_learner_steps"]:,} | {name} | '
          f'{row["episodes"]} | {row["reach"]:.0%} / {row["lift"]:.0%} / '
          f'{row["stack"]:.0%} | {row["mean_return"]:.2f} | '
          f'{row["mean_lifted_steps"]:.1f} |')
