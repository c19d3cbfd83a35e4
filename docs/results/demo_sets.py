"""Which demo set each stored run was evaluated on, from its evaluation.json.

Not project code: kept beside the runs it reads. evaluate.py stores every
demo's length (`demo_steps`, frames - 1) per split; a demo set's
metadata.json stores its episode lengths. For each run under RESULTS and
each set given, it prints how many of the run's leading demos have the
set's lengths (10 of 10: that set, as far as lengths tell).

    python docs/results/demo_sets.py docs/results/final_60min \
        data/demos_train_features data/demos_validation_features ...
"""
import glob
import json
import os
import sys

_SPLITS = {'A': 'train', 'B': 'validation'}


def leading_matches(steps, lengths):
  count = 0
  for run_steps, length in zip(steps, lengths):
    if run_steps != length - 1:
      break
    count += 1
  return count


def main(results, *sets):
  metadata = {}
  for path in sets:
    with open(os.path.join(path, 'metadata.json')) as f:
      metadata[path] = json.load(f)
    m = metadata[path]
    print(f"{path}: style {m['style']}, seed {m['seed']}, {m['count']} demos, "
          f"{sum(m['episode_lengths']) - m['count']} steps")
  for run in sorted(glob.glob(os.path.join(results, 'arm*_seed*'))):
    with open(os.path.join(run, 'evaluation.json')) as f:
      episodes = json.load(f)['episodes']
    cells = []
    for path, m in metadata.items():
      steps = [e['demo_steps'] for e in episodes[_SPLITS[m['style']]]]
      cells.append(f"{os.path.basename(path)} "
                   f"{leading_matches(steps, m['episode_lengths'])}/"
                   f"{len(steps)}")
    print(f"{os.path.basename(run)}: " + ', '.join(cells))


if __name__ == '__main__':
  main(*sys.argv[1:])
