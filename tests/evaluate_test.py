"""launch/evaluate.py and compare_baselines.run_agent, end to end.

A tiny MetaMimic agent is trained in this process (the single-process agent:
a few dozen imitation steps with learner updates, a few task actor steps) and
its learners are checkpointed with Acme's Checkpointer the way the program's
learner nodes do it (<workdir>/checkpoints/<label>, key 'learner'), next to
the summary.json the program's coordinator writes at its end. Then
`launch/compare_baselines.py --baselines=metamimic` runs as a subprocess:
run_agent finds the training finished, runs `evaluate.py` on the checkpoints
and tabulates the result, and report.py draws its figure. The tests read what
the scripts wrote. Training with `run_local.py` on local_mp is covered by
program_test.py; here it would cost minutes of node start-up on 2 cores.
"""

import dataclasses
import json
import os
import subprocess
import sys

import acme
from acme import specs
from acme.tf import savers as tf2_savers
from acme.utils import counting
from acme.utils import loggers
import pytest

from acme_metamimic import agent as agent_lib
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import environments
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic.demonstrations import recording
from acme_metamimic.environments import imitation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'launch', 'compare_baselines.py')
PRESET = 'features'
SPLITS = ('validation', 'train')
# Episode lengths of the tiny training: EnvironmentLoop ends whole episodes.
IMITATION_STEPS = 40
TASK_STEPS = 10


def _train(workdir, train_demos):
  """Trains a tiny agent; writes learner checkpoints and summary.json.

  One imitation episode along the first IMITATION_STEPS steps of the demo
  (the learners update once per step after 16), one TASK_STEPS-step episode
  of the task actor. Returns the trained (imitation, task) networks that
  the learners give their actors (the target networks, which evaluate.py
  restores) and the learner steps.
  """
  config = config_lib.features_config(
      min_replay_size=16, batch_size=8, samples_per_insert=8.,
      early_termination='none')
  environment = presets.make_environment(PRESET, seed=0)
  spec = specs.make_environment_spec(environment)
  imitation_networks, task_networks = (
      presets.make_networks(PRESET, config, spec, goal_conditioned=goal)
      for goal in (True, False))
  agent = agent_lib.MetaMimic(spec, imitation_networks, task_networks, config,
                              logger_factory=lambda _: loggers.NoOpLogger())
  counter = counting.Counter(time_delta=0.)
  acme.EnvironmentLoop(
      agent.builder.make_imitation_environment(
          environment, [d.prefix(IMITATION_STEPS) for d in train_demos],
          seed=1),
      agent, counter=counting.Counter(counter, 'imitation_actor',
                                      time_delta=0.),
      logger=loggers.NoOpLogger()).run(num_episodes=1)
  acme.EnvironmentLoop(
      environments.make_environment(PRESET, seed=1, episode_length=TASK_STEPS),
      agent.task_actor,
      counter=counting.Counter(counter, 'task_actor', time_delta=0.),
      logger=loggers.NoOpLogger()).run(num_episodes=1)
  steps, acting = {}, []
  for label, learner, networks in (
      (evaluation.IMITATION_LEARNER, agent.learner.imitation_learner,
       imitation_networks),
      (evaluation.TASK_LEARNER, agent.learner.task_learner, task_networks)):
    # What CheckpointingRunner(learner, key='learner', subdirectory=label,
    # directory=workdir, add_uid=False) saves in a learner node.
    tf2_savers.Checkpointer(
        objects_to_save={'learner': learner.state}, directory=str(workdir),
        subdirectory=label, add_uid=False).save(force=True)
    steps[label] = int(learner.state['num_steps'].numpy())
    acting.append(dataclasses.replace(
        networks, policy_network=learner.state['target_policy'],
        observation_network=learner.state['target_observation']))
  counts = dict(counter.get_counts(),
                **{f'{label}_steps': value for label, value in steps.items()})
  with open(workdir / 'summary.json', 'w') as f:
    json.dump(dict(counts=counts, baseline='metamimic', workdir=str(workdir),
                   table_sizes=agent.table_sizes()), f)
  return (*acting, steps)


@pytest.fixture(scope='module')
def comparison(tmp_path_factory):
  """The trained workdir under a comparison root, after compare_baselines."""
  root = tmp_path_factory.mktemp('baselines')
  demos = {split: str(root / f'demos_{split}') for split in SPLITS}
  recording.record_demonstrations('A', 1, PRESET, 0, demos['train'],
                                  progress=False)
  # The seeds run_local records with (compare_baselines' --seed 0 is its
  # --demo_seed), so that it takes these sets as its own.
  recording.record_demonstrations('B', 1, PRESET, 10_000, demos['validation'],
                                  progress=False)
  workdir = root / 'metamimic'
  workdir.mkdir()
  imitation_networks, task_networks, steps = _train(
      workdir, presets.load_demonstrations(PRESET, demos['train']))
  assert min(steps.values()) > 0  # Both learners really learned.
  result = subprocess.run(
      [sys.executable, SCRIPT, f'--root={root}', '--baselines=metamimic',
       '--num_actors=1', '--num_demos=1', '--num_validation_demos=1',
       '--num_episodes=1'],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
  return dict(root=root, workdir=workdir, demos=demos, steps=steps,
              networks=(imitation_networks, task_networks),
              output=result.stdout)


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def test_evaluate_scores_the_trained_checkpoints(comparison):
  workdir = comparison['workdir']
  evaluation_json = _read_json(workdir / 'evaluation.json')
  # The policies came from this workdir's checkpoints, as trained.
  assert evaluation_json['source'] == dict(
      kind='checkpoint', workdir=str(workdir),
      learner_steps=comparison['steps'], networks='target')
  assert evaluation_json['preset'] == PRESET
  assert evaluation_json['early_termination'] == 'none'
  metrics = evaluation_json['metrics']
  assert set(metrics) == {'imitation_validation', 'imitation_train',
                          'task_policy_validation', 'task_policy_train',
                          'generalization_gap'}
  for split in SPLITS:
    metadata = _read_json(os.path.join(comparison['demos'][split],
                                       'metadata.json'))
    demo_steps = metadata['episode_lengths'][0] - 1  # Frames: T + 1.
    # The sets are named with what they were recorded from.
    assert evaluation_json['demos'][split] == dict(
        path=comparison['demos'][split], style=metadata['style'],
        seed=metadata['seed'], count=1, evaluated=1)
    (episode,) = evaluation_json['episodes'][split]
    assert episode['demo_id'] == 0 and episode['demo_steps'] == demo_steps
    # Without early termination the imitation policy follows the whole demo.
    assert episode['imitation_steps'] == demo_steps
    assert not episode['imitation_early_terminated']
    imitation_metrics = metrics[f'imitation_{split}']
    task = metrics[f'task_policy_{split}']
    assert imitation_metrics['num_episodes'] == task['num_episodes'] == 1.
    # The metrics of one episode are that episode's numbers.
    assert imitation_metrics['imitation_return'] == pytest.approx(
        episode['imitation_return'])
    assert imitation_metrics['imitation_reward_per_step'] == pytest.approx(
        episode['imitation_return'] / demo_steps)
    assert 0. < imitation_metrics['imitation_reward_normalized'] <= 1.
    assert task['task_return'] == pytest.approx(episode['task_policy_return'])
    assert task['demo_task_return'] == pytest.approx(
        episode['demo_task_return'])
    assert task['closest_approach_m'] > 0.
  gap = metrics['generalization_gap']
  assert 'imitation_reward_per_step' in gap
  for key, value in gap.items():
    assert value == pytest.approx(metrics['imitation_train'][key] -
                                  metrics['imitation_validation'][key])

  # The trained networks, evaluated here, score what evaluate.py wrote: it
  # restored the trained policies the actors act with, not fresh ones.
  imitation_networks, task_networks = comparison['networks']
  environment = presets.make_environment(PRESET, seed=0)
  spec = specs.make_environment_spec(environment)
  demos = presets.load_demonstrations(PRESET, comparison['demos']['train'])
  builder = builder_lib.MetaMimicBuilder(
      config_lib.features_config(early_termination='none'))
  here, _ = evaluation.evaluate_imitation(
      environment, evaluation.make_greedy_policy(
          imitation_networks, imitation.imitation_environment_spec(spec)),
      builder, demos)
  assert metrics['imitation_train']['imitation_return'] == pytest.approx(
      here['imitation_return'], rel=1e-5)
  here, _ = evaluation.evaluate_task(
      environment, evaluation.make_greedy_policy(task_networks, spec), demos)
  assert metrics['task_policy_train']['closest_approach_m'] == pytest.approx(
      here['closest_approach_m'], rel=1e-5)

  # evaluate.py printed the same metrics as a Markdown table.
  with open(workdir / 'evaluate.log') as f:
    log = f.read()
  table = [line for line in log.splitlines() if line.startswith('|')]
  assert table[0].startswith('| evaluation | ')
  assert {line.split(' | ')[0][2:] for line in table[2:]} == set(metrics)
  assert f'[evaluate] wrote {workdir / "evaluation.json"}' in log


def test_headline_reports_the_fidelity_figures_of_an_evaluation(comparison):
  # What run_local --evaluate prints after the main job, from evaluate.py's
  # real output.
  metrics = _read_json(comparison['workdir'] / 'evaluation.json')['metrics']
  lines = evaluation.headline(metrics)
  assert len(lines) == 4
  for line, split in zip(lines[:2], SPLITS):
    imitation_metrics = metrics[f'imitation_{split}']
    per_step = imitation_metrics['imitation_reward_per_step']
    pct = imitation_metrics['task_return_pct_of_demo']
    assert line.endswith(f"eq. 2 reward/step {per_step:.3f}, task reward "
                         f"{pct:.1f} % of the demos' (1 demo)")
  assert lines[0].startswith('imitation, held-out demos ')
  for line, split in zip(lines[2:], SPLITS):
    task = metrics[f'task_policy_{split}']
    assert line.endswith(
        f"reach {task['reach_rate']:.0%}, lift {task['lift_rate']:.0%}, "
        f"stack {task['success_rate']:.0%} of 1")
  assert lines[2].startswith('task policy, held-out starts ')
  # A baseline without imitation has task-policy lines only.
  assert evaluation.headline({k: v for k, v in metrics.items()
                              if k.startswith('task')}) == lines[2:]


def test_run_agent_tabulates_the_finished_training(comparison):
  root, workdir = comparison['root'], comparison['workdir']
  # The training had ended (summary.json): only evaluate.py and report.py ran.
  commands = [line for line in comparison['output'].splitlines()
              if line.startswith('[compare] $')]
  assert [os.path.basename(line.split()[3]) for line in commands] == [
      'evaluate.py', 'report.py']
  assert not os.path.exists(workdir / 'run_local.log')
  result = _read_json(root / 'comparison.json')
  assert result['num_actors'] == 1 and result['num_episodes'] == 1
  (row,) = result['rows']
  assert row['agent'] == 'metamimic' and row['preset'] == PRESET
  assert row['training demos'] == 1 and row['workdir'] == str(workdir)
  # Counts come from the summary...
  counts = _read_json(workdir / 'summary.json')['counts']
  assert row['imitation learner steps'] == comparison['steps'][
      'imitation_learner']
  assert row['task learner steps'] == comparison['steps']['task_learner']
  assert row['imitation actor env steps'] == counts['imitation_actor_steps']
  assert row['task actor env steps'] == counts['task_actor_steps'] > 0
  # ...and the metrics from evaluate.py's JSON.
  metrics = _read_json(workdir / 'evaluation.json')['metrics']
  assert row['task return (held-out starts)'] == (
      metrics['task_policy_validation']['task_return'])
  assert row['closest approach m (train)'] == (
      metrics['task_policy_train']['closest_approach_m'])
  assert row['imitation reward/step held-out'] == (
      metrics['imitation_validation']['imitation_reward_per_step'])
  assert row['generalization gap (reward/step)'] == (
      metrics['generalization_gap']['imitation_reward_per_step'])

  with open(root / 'comparison.md') as f:
    lines = f.read().splitlines()
  assert len(lines) == 3
  header = [cell.strip() for cell in lines[0].strip('|').split('|')]
  cells = [cell.strip() for cell in lines[2].strip('|').split('|')]
  assert len(cells) == len(header)
  table = dict(zip(header, cells))
  assert table['agent'] == 'metamimic' and table['training demos'] == '1'
  assert float(table['imitation learner steps']) == (
      row['imitation learner steps'])
  assert float(table['imitation return held-out']) == pytest.approx(
      row['imitation return held-out'], rel=1e-3)
  assert lines[2] in comparison['output']  # The table is also printed.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(root / 'report' / 'fig8_task_policies.png') as figure:
    assert figure.format == 'PNG' and figure.size == (600, 400)
  assert row['imitation return train'] == (
      metrics['imitation_train']['imitation_return'])


def test_evaluate_follows_every_held_out_demo_and_only_those_trained_on(
    tmp_path):
  # run_local --evaluate passes its --max_train_demos: a run that trained on
  # the first 2 demos has those 2 as its training demos, not the first 10.
  output = tmp_path / 'evaluation.json'
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'evaluate.py'),
       '--untrained', '--max_train_demos=2', '--task_max_steps=2',
       f'--demos={os.path.join(ROOT, "data", "demos_train_features")}',
       '--validation_demos='
       f'{os.path.join(ROOT, "data", "demos_validation_features")}',
       f'--output={output}'],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
  evaluation_json = _read_json(output)
  demos = evaluation_json['demos']
  assert (demos['validation']['count'], demos['train']['count']) == (10, 20)
  assert (demos['validation']['evaluated'], demos['train']['evaluated']) == (
      10, 2)
  assert [e['demo_id'] for e in evaluation_json['episodes']['train']] == [0, 1]
  assert len(evaluation_json['episodes']['validation']) == 10
  lines = evaluation.headline(evaluation_json['metrics'])
  assert lines[0].endswith('(10 demos)') and lines[1].endswith('(2 demos)')
