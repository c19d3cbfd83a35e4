"""Markdown table of one fidelity screen (docs/fidelity.md), from its runs.

Not project code: kept beside the runs it reads. A screen directory holds
`arms.json` ({arm: {"label": ..., "runs": [run directory, ...]}}, run
directories relative to the screen's, one per seed) and the runs that
docs/results/screen.sh stored: summary.json (coordinator) and
evaluation.json (launch/evaluate.py).

    python docs/results/screen_table.py docs/results/screen_vmax

Given docs/results/fidelity.json instead, it prints the issue's targets
against every run there; with `--full_budget` after it, the issue's table:
one row per arm of the runs at the full budget (training_seconds of at least
3,000), each figure per seed in seed order, then its mean (min-max).

    python docs/results/screen_table.py docs/results/fidelity.json --full_budget

With `--task` after a screen directory, the task reward per run instead:
the imitation policy's on held-out and training demos (% of the demos',
and the fraction of demos it stacked in, beside the demos' own), and the
task policy's from the held-out starts (return, reach / lift / stack rates).

    python docs/results/screen_table.py docs/results/imitation_levers --task
"""
import json
import os
import sys


def load(path):
  # The joint tracker's evaluation (evaluate.py --policy=joint_tracker) has
  # no training, so no summary.json.
  summary = dict(counts=dict(task_learner_steps=0, task_actor_steps=0))
  if os.path.exists(os.path.join(path, 'summary.json')):
    with open(os.path.join(path, 'summary.json')) as f:
      summary = json.load(f)
  with open(os.path.join(path, 'evaluation.json')) as f:
    evaluation = json.load(f)
  counts, metrics = summary['counts'], evaluation['metrics']
  # D4PG and D4PGfD runs have no imitation learner, actors or metrics.
  imitation = lambda split, key: metrics.get(f'imitation_{split}', {}).get(key)
  return dict(
      # The seed is in the run directory's name (arm<A>_seed<S>).
      seed=int(os.path.basename(os.path.normpath(path)).rsplit('seed', 1)[1]),
      learner=(counts.get('imitation_learner_steps', 0),
               counts['task_learner_steps']),
      actors=(counts.get('imitation_actor_steps', 0),
              counts['task_actor_steps']),
      held_out=imitation('validation', 'imitation_reward_per_step'),
      train=imitation('train', 'imitation_reward_per_step'),
      task_pct=imitation('validation', 'task_return_pct_of_demo'))


def _number(value, digits):
  return '-' if value is None else f'{value:.{digits}f}'


def table(screen):
  with open(os.path.join(screen, 'arms.json')) as f:
    arms = json.load(f)
  rows = ['| arm | seed | learner steps, imitation / task | env steps, '
          'imitation / task actors | eq. 2 reward per step, held-out | '
          'training demos | held-out task return, % of demos\' |',
          '|---|---|---|---|---|---|---|']
  for arm, spec in arms.items():
    runs = [load(os.path.join(screen, run)) for run in spec['runs']]
    for run in runs:
      rows.append(
          f"| {arm}: {spec['label']} | {run['seed']} | {run['learner'][0]:,} / "
          f"{run['learner'][1]:,} | {run['actors'][0]:,} / "
          f"{run['actors'][1]:,} | {_number(run['held_out'], 3)} | "
          f"{_number(run['train'], 3)} | {_number(run['task_pct'], 1)} |")
    if len(runs) > 1:
      span = lambda key, digits: '-' if None in [r[key] for r in runs] else (
          f'{sum(r[key] for r in runs) / len(runs):.{digits}f} '
          f'({min(r[key] for r in runs):.{digits}f}-'
          f'{max(r[key] for r in runs):.{digits}f})')
      rows.append(f'| {arm}: mean (min-max) | | | | {span("held_out", 3)} | '
                  f'{span("train", 3)} | {span("task_pct", 1)} |')
  return '\n'.join(rows)


def task_table(screen):
  """Per run: task reward of the imitation and the task policies."""
  with open(os.path.join(screen, 'arms.json')) as f:
    arms = json.load(f)
  rows = ['| arm | seed | imitation, held-out: task reward % of demos\' / '
          'stacked (demos) | imitation, training: demos, task reward % / '
          'stacked (demos) | task policy, held-out starts: return / reach / '
          'lift / stack | task policy, training starts: return / reach / '
          'lift / stack |', '|---|---|---|---|---|---|']
  for arm, spec in arms.items():
    for run in spec['runs']:
      path = os.path.join(screen, run)
      with open(os.path.join(path, 'evaluation.json')) as f:
        metrics = json.load(f)['metrics']
      seed = int(os.path.basename(os.path.normpath(path)).rsplit('seed', 1)[1])
      cells = []
      for split in ('validation', 'train'):
        m = metrics.get(f'imitation_{split}')
        if not m:
          cells.append('-')
          continue
        count = f"{m['num_episodes']:.0f}, " if split == 'train' else ''
        cells.append(f"{count}{m['task_return_pct_of_demo']:.1f} / "
                     f"{m['success_rate']:.1f} ({m['demo_success_rate']:.1f})")
      for split in ('validation', 'train'):
        m = metrics.get(f'task_policy_{split}')
        cells.append('-' if not m else (
            f"{m['task_return']:.2f} / {m['reach_rate']:.1f} / "
            f"{m['lift_rate']:.1f} / {m['success_rate']:.1f}"))
      rows.append(f"| {arm} | {seed} | " + ' | '.join(cells) + ' |')
  return '\n'.join(rows)


def targets(path):
  """The issue's targets against every run of docs/results/fidelity.json."""
  with open(path) as f:
    runs = json.load(f)
  rows = ['| run | seed | held-out task reward, % of demos\' (target 50) | '
          'training (target 67) | task policy reach / lift / stack, held-out '
          'starts (target: lift from half, stack in some) |',
          '|---|---|---|---|---|']
  for run in runs:
    rate = lambda key: ('-' if run[key] is None
                        else format(run[key], '.0%'))
    rows.append(
        f"| {run['run']} | {run['seed']} | "
        f"{_number(run['heldout_pct_of_demo_task_reward'], 1)} | "
        f"{_number(run['train_pct_of_demo_task_reward'], 1)} | "
        f"{rate('task_policy_reach_rate')} / "
        f"{rate('task_policy_lift_rate')} / "
        f"{rate('task_policy_success_rate')} |")
  return '\n'.join(rows)


def _per_seed(values, digits, percent=False):
  """'a / b / c (mean, min-max)' of one figure over an arm's seeds."""
  if None in values:
    return '-'
  scale, unit = (100., ' %') if percent else (1., '')
  text = lambda value: f'{value * scale:.{digits}f}'
  cell = ' / '.join(text(value) for value in values) + unit
  if len(values) > 1:
    cell += (f' ({text(sum(values) / len(values))}, '
             f'{text(min(values))}-{text(max(values))})')
  return cell


def full_budget(path):
  """The issue's table: every arm run at the full budget, seed by seed."""
  with open(path) as f:
    runs = json.load(f)
  results = os.path.dirname(path)
  arms = {}
  for run in runs:
    if (run['training_seconds'] or 0) < 3000:  # None: the joint tracker.
      continue
    screen, name = run['run'].split('/')
    arms.setdefault((screen, name.split('_seed')[0][3:]), []).append(run)
  rows = ['| arm | agent | seeds | held-out imitation, eq. 2 reward per step | '
          'held-out imitation, % of demos\' task reward (target 50) | '
          'training-demo imitation, % (target 67) | task policy, held-out '
          'reach | lift (target: half) | stack (target: some) |',
          '|---|---|---|---|---|---|---|---|---|']
  for (screen, arm), members in arms.items():
    members.sort(key=lambda run: run['seed'])
    with open(os.path.join(results, screen, 'arms.json')) as f:
      label = json.load(f)[arm]['label']
    column = lambda key: [run[key] for run in members]
    rows.append(
        f"| {screen} {arm}: {label} | {members[0]['agent']} | "
        f"{' / '.join(str(run['seed']) for run in members)} | "
        f"{_per_seed(column('heldout_imitation_reward_per_step'), 3)} | "
        f"{_per_seed(column('heldout_pct_of_demo_task_reward'), 1)} | "
        f"{_per_seed(column('train_pct_of_demo_task_reward'), 1)} | "
        f"{_per_seed(column('task_policy_reach_rate'), 0, percent=True)} | "
        f"{_per_seed(column('task_policy_lift_rate'), 0, percent=True)} | "
        f"{_per_seed(column('task_policy_success_rate'), 0, percent=True)} |")
  return '\n'.join(rows)


if __name__ == '__main__':
  if sys.argv[1].endswith('.json') and sys.argv[2:] == ['--full_budget']:
    print(full_budget(sys.argv[1]))
  elif sys.argv[1].endswith('.json'):
    print(targets(sys.argv[1]))
  elif sys.argv[2:] == ['--task']:
    print(task_table(sys.argv[1]))
  else:
    print(table(sys.argv[1]))
