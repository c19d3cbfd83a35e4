"""Markdown table of the actors-versus-learners screen (docs/fidelity.md).

Not project code: kept beside the runs it reads. Each run directory holds the
run's summary.json (coordinator) and evaluation.json (`launch/evaluate.py`).

    python docs/results/screen_actors/table.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ARMS = {'A': '2 imitation actors, 1 task actor (default)',
        'B': '1 imitation actor, 1 task actor'}


def load(name):
  with open(os.path.join(HERE, name, 'summary.json')) as f:
    summary = json.load(f)
  with open(os.path.join(HERE, name, 'evaluation.json')) as f:
    evaluation = json.load(f)
  counts, metrics = summary['counts'], evaluation['metrics']
  return dict(
      learner=(counts['imitation_learner_steps'], counts['task_learner_steps']),
      actors=(counts['imitation_actor_steps'], counts['task_actor_steps']),
      held_out=metrics['imitation_validation']['imitation_reward_per_step'],
      train=metrics['imitation_train']['imitation_reward_per_step'],
      task_pct=metrics['imitation_validation']['task_return_pct_of_demo'])


rows = ['| arm | seed | learner steps, imitation / task | env steps, '
        'imitation / task actors | eq. 2 reward per step, held-out | '
        'training demos | held-out task return, % of demos\' |',
        '|---|---|---|---|---|---|---|']
for arm in sorted(ARMS):
  runs = []
  for seed in (0, 1):
    name = f'arm{arm}_seed{seed}'
    if not os.path.isdir(os.path.join(HERE, name)):
      continue
    run = load(name)
    runs.append(run)
    rows.append(f"| {arm}: {ARMS[arm]} | {seed} | {run['learner'][0]:,} / "
                f"{run['learner'][1]:,} | {run['actors'][0]:,} / "
                f"{run['actors'][1]:,} | {run['held_out']:.3f} | "
                f"{run['train']:.3f} | {run['task_pct']:.1f} |")
  if len(runs) > 1:
    span = lambda key: (f"{sum(r[key] for r in runs) / len(runs):.3f} "
                        f"({min(r[key] for r in runs):.3f}-"
                        f"{max(r[key] for r in runs):.3f})")
    rows.append(f'| {arm}: mean (min-max) | | | | {span("held_out")} | '
                f'{span("train")} | |')
print('\n'.join(rows))
