"""Runs the paper's agents under one budget and tabulates their task policies.

    python launch/compare_baselines.py --root=workdir/baselines --max_seconds=360

For each --baselines entry (MetaMimic and the Fig. 8 baselines), in turn:
`launch/run_local.py --baseline=NAME` into <root>/<NAME> with the same wall
time, seed, demo sets and number of actor processes (--num_actors: MetaMimic
splits them into imitation actors and one task actor, the D4PG baselines use
them all as task actors), then `launch/evaluate.py` on its checkpoints. Runs
are sequential, so each gets the whole machine. Writes

- <root>/comparison.json and <root>/comparison.md: per agent, learner and
  actor steps and the task policy from every held-out and training demo's
  start (task return, % of the demo's return, success rate), plus one-shot
  imitation (MetaMimic agents only);
- <root>/report/fig8_task_policies.png (`launch/report.py --fig8`): the
  task evaluator's return over the run, one curve per agent.

With --demo_counts (the paper's fig. 5 ablation), every agent is trained
once per count N, on the first N demos of one training set of max(N) demos
(`run_local.py --max_train_demos=N`), into <root>/<NAME>_<N>demos; the
recorder draws demos in sequence, so the sets are nested. The evaluation's
training demos are the first --num_episodes, which every subset holds.
report.py then draws fig5_generalization.png and fig5_demo_counts.png.

With several --presets (the paper's fig. 6 network ablation, e.g.
features,features_mlp64,features_mlp1024), every agent is trained once per
preset, into <root>/<NAME>_<PRESET>, and report.py draws fig. 6.

An interrupted comparison continues where it was: a workdir whose training
ended (run_local.py wrote summary.json) is not trained again, which would add
a second training budget, and one that has evaluation.json is not evaluated
again. Delete the workdir to rerun an agent.
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags

from acme_metamimic import baselines

_ROOT = flags.DEFINE_string('root', 'workdir/baselines',
                            'One workdir per agent is made under this.')
_BASELINES = flags.DEFINE_list(
    'baselines', ['metamimic', 'd4pg', 'd4pgfd', 'd4pg_curriculum',
                  'metamimic_curriculum'],
    f'Agents to run, from {sorted(baselines.BASELINES)}.')
_MAX_SECONDS = flags.DEFINE_integer('max_seconds', 360,
                                    'Training wall time per agent.')
_NUM_ACTORS = flags.DEFINE_integer('num_actors', 3,
                                   'Actor processes per agent.')
_NUM_DEMOS = flags.DEFINE_integer('num_demos', 20, 'Training demos (style A).')
_DEMO_COUNTS = flags.DEFINE_list(
    'demo_counts', [], 'Demo-count ablation: train every agent once per count '
    '(overrides --num_demos).')
_NUM_VALIDATION_DEMOS = flags.DEFINE_integer('num_validation_demos', 10,
                                             'Held-out demos (style B).')
_NUM_EPISODES = flags.DEFINE_integer('num_episodes', 10,
                                     'Demos per split in the evaluation.')
_PRESETS = flags.DEFINE_list(
    'presets', ['features'], 'Presets to run every agent with (one workdir '
    'each when there are several; the network ablation). They must share one '
    'environment, whose demos all runs use.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of every run and the demos.')

LAUNCH = os.path.dirname(os.path.abspath(__file__))
COLUMNS = (
    ('agent', None), ('preset', None), ('training demos', None),
    ('task learner steps', 'task_learner_steps'),
    ('imitation learner steps', 'imitation_learner_steps'),
    ('task actor env steps', 'task_actor_steps'),
    ('imitation actor env steps', 'imitation_actor_steps'))
METRICS = (
    ('task return (held-out starts)', 'task_policy_validation', 'task_return'),
    ('% of demo return (held-out)', 'task_policy_validation',
     'task_return_pct_of_demo'),
    ('success (held-out)', 'task_policy_validation', 'success_rate'),
    ('task return (train starts)', 'task_policy_train', 'task_return'),
    ('reach rate (held-out)', 'task_policy_validation', 'reach_rate'),
    ('closest approach m (held-out)', 'task_policy_validation',
     'closest_approach_m'),
    ('closest approach m (train)', 'task_policy_train', 'closest_approach_m'),
    ('imitation return held-out', 'imitation_validation', 'imitation_return'),
    ('imitation return train', 'imitation_train', 'imitation_return'),
    ('imitation reward/step held-out', 'imitation_validation',
     'imitation_reward_per_step'),
    ('imitation reward/step train', 'imitation_train',
     'imitation_reward_per_step'),
    ('generalization gap (reward/step)', 'generalization_gap',
     'imitation_reward_per_step'),
)


def actor_flags(baseline: baselines.Baseline, num_actors: int):
  if baseline.imitation:
    return [f'--num_imitation_actors={max(num_actors - 1, 1)}',
            '--num_task_actors=1']
  return ['--num_imitation_actors=0', f'--num_task_actors={num_actors}']


def run(command, log_path):
  """Runs `command`, its output to log_path (and a tail on failure)."""
  print(f'[compare] $ {" ".join(command)}', flush=True)
  with open(log_path, 'w') as log:
    result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
  if result.returncode:
    with open(log_path) as f:
      tail = f.read()[-3000:]
    raise RuntimeError(f'{command[1]} failed (exit {result.returncode}); '
                       f'log: {log_path}\n{tail}')


def run_agent(name, root, demos, num_demos, preset, subset_of=None):
  """Trains and evaluates one agent; returns its row of the comparison.

  With `subset_of`, it trains on the first `num_demos` demos of a set of
  `subset_of` demos (recorded first if missing).
  """
  baseline = baselines.get(name)
  workdir = os.path.join(root, name)
  if len(_PRESETS.value) > 1:
    workdir += f'_{preset}'
  if subset_of:
    workdir += f'_{num_demos}demos'
  evaluation_path = os.path.join(workdir, 'evaluation.json')
  summary_path = os.path.join(workdir, 'summary.json')
  shared_flags = [f'--demos={demos["train"]}',
                  f'--validation_demos={demos["validation"]}',
                  f'--preset={preset}']
  # run_local.py removes summary.json when it starts and writes it when the
  # training ended.
  if not os.path.exists(summary_path):
    os.makedirs(workdir, exist_ok=True)
    start = time.time()
    # run_local records the demo sets if they are missing (first agent only).
    run([sys.executable, os.path.join(LAUNCH, 'run_local.py'),
         f'--workdir={workdir}', f'--baseline={name}', f'--seed={_SEED.value}',
         f'--demo_seed={_SEED.value}',
         f'--max_seconds={_MAX_SECONDS.value}', '--make_demos=true',
         f'--num_demos={subset_of or num_demos}',
         f'--num_validation_demos={_NUM_VALIDATION_DEMOS.value}',
         *([f'--max_train_demos={num_demos}'] if subset_of else []),
         *shared_flags, *actor_flags(baseline, _NUM_ACTORS.value)],
        os.path.join(workdir, 'run_local.log'))
    print(f'[compare] {os.path.basename(workdir)}: trained in '
          f'{time.time() - start:.0f}s', flush=True)
  if not os.path.exists(evaluation_path):
    run([sys.executable, os.path.join(LAUNCH, 'evaluate.py'),
         f'--workdir={workdir}', f'--num_episodes={_NUM_EPISODES.value}',
         f'--output={evaluation_path}', *shared_flags],
        os.path.join(workdir, 'evaluate.log'))
  with open(summary_path) as f:
    counts = json.load(f)['counts']
  with open(evaluation_path) as f:
    metrics = json.load(f)['metrics']
  row = {'agent': name, 'preset': preset, 'training demos': num_demos,
         'workdir': workdir}
  for label, key in COLUMNS:
    if key:
      row[label] = counts.get(key)
  for label, group, key in METRICS:
    row[label] = metrics.get(group, {}).get(key)
  return row


def markdown(rows):
  labels = [label for label, _ in COLUMNS] + [label for label, _, _ in METRICS]
  lines = ['| ' + ' | '.join(labels) + ' |',
           '|' + '---|' * len(labels)]
  for row in rows:
    cells = []
    for label in labels:
      value = row.get(label)
      cells.append('' if value is None else (
          value if isinstance(value, str) else f'{value:.4g}'))
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main(argv):
  del argv
  try:
    counts = baselines.check_comparison(_BASELINES.value, _PRESETS.value,
                                        _DEMO_COUNTS.value, _NUM_EPISODES.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  root = os.path.abspath(_ROOT.value)
  os.makedirs(root, exist_ok=True)
  demos = {split: os.path.join(root, f'demos_{split}')
           for split in ('train', 'validation')}
  rows = []
  for name in _BASELINES.value:
    for preset in _PRESETS.value:
      for num_demos in counts or [_NUM_DEMOS.value]:
        rows.append(run_agent(name, root, demos, num_demos, preset,
                              subset_of=max(counts) if counts else None))
    with open(os.path.join(root, 'comparison.json'), 'w') as f:
      json.dump(dict(rows=rows, max_seconds=_MAX_SECONDS.value,
                     num_actors=_NUM_ACTORS.value, seed=_SEED.value,
                     num_episodes=_NUM_EPISODES.value), f, indent=2)
  table = markdown(rows)
  with open(os.path.join(root, 'comparison.md'), 'w') as f:
    f.write(table + '\n')
  if counts:
    figure = [f'--fig5={row["training demos"]} demos={row["workdir"]}'
              for row in rows]
    figure += [f'--fig5_demos={row["training demos"]}={row["workdir"]}'
               for row in rows]
  elif len(_PRESETS.value) > 1:
    figure = [f'--fig6={row["preset"]}={row["workdir"]}' for row in rows]
  else:
    figure = [f'--fig8={row["agent"]}={row["workdir"]}' for row in rows]
  run([sys.executable, os.path.join(LAUNCH, 'report.py'),
       f'--output_dir={os.path.join(root, "report")}', *figure],
      os.path.join(root, 'report.log'))
  print(table, flush=True)


if __name__ == '__main__':
  app.run(main)
