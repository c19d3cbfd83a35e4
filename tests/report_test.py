"""launch/report.py: figures from a synthetic log directory, a GIF from a real
(short) demo with untrained policies."""

import csv
import json
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCRIPT = os.path.join(_ROOT, 'launch', 'report.py')


_MODULE = []


def _load_report():
  """Imports launch/report.py once (its absl flags can be defined once)."""
  if not _MODULE:
    spec = importlib.util.spec_from_file_location('report', _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _MODULE.append(module)
  return _MODULE[0]


def _write_log(workdir, label, rows):
  directory = os.path.join(workdir, 'logs', label)
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, 'logs.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def _synthetic_run(workdir, seed):
  rng = np.random.default_rng(seed)
  for label in ('evaluator_imitation_validation', 'evaluator_imitation_train'):
    _write_log(workdir, label, [
        dict(episodes=i + 1, steps=100, imitation_return=5. * i + rng.normal(),
             task_return=0.1 * i, imitation_learner_steps=50 * i,
             **{f'{label}_steps': 100 * (i + 1)})
        for i in range(12)])
  _write_log(workdir, 'evaluator_task', [
      dict(episodes=i + 1, episode_return=0.2 * i + rng.normal(),
           task_learner_steps=40 * i, evaluator_task_steps=400 * (i + 1))
      for i in range(12)])


@pytest.fixture
def runs(tmp_path):
  paths = [str(tmp_path / f'seed{s}') for s in range(2)]
  for seed, path in enumerate(paths):
    _synthetic_run(path, seed)
  return paths


def test_curves_and_seed_spread(runs):
  report = _load_report()
  curve = report.load_curve(runs[0], 'evaluator_task', 'episode_return',
                            ('task_learner_steps',), smooth=3)
  assert len(curve[0]) == 10 and curve[0][0] == 80.
  assert curve[2] == 'task_learner_steps'
  # Columns missing from the header fall through to the next x key.
  assert report.load_curve(runs[0], 'evaluator_task', 'episode_return',
                           ('imitation_learner_steps',
                            'evaluator_task_steps'))[2] == 'evaluator_task_steps'
  x, mean, low, high = report.aggregate(
      [report.load_curve(r, 'evaluator_task', 'episode_return',
                         ('task_learner_steps',))[:2] for r in runs])
  assert np.all(low <= mean) and np.all(mean <= high)
  assert x[0] == 0. and x[-1] == 440.
  assert report.load_curve(runs[0], 'missing', 'x', ('y',)) is None
  assert report.parse_runs(['a=w1,w2', 'b=w3', 'a=w4']) == {
      'a': ['w1', 'w2', 'w4'], 'b': ['w3']}


def test_script_writes_figures(runs, tmp_path):
  out = tmp_path / 'report'
  entry = 'metamimic=' + ','.join(runs)
  result = subprocess.run(
      [sys.executable, _SCRIPT, f'--output_dir={out}', f'--fig5={entry}',
       f'--fig5=one seed={runs[0]}', f'--fig6=mlp={runs[0]}',
       f'--fig8={entry}', f'--fig8=d4pg={runs[1]}'],
      capture_output=True, text=True, timeout=120, cwd=_ROOT)
  assert result.returncode == 0, result.stderr[-2000:]
  for name in ('fig5_generalization.png', 'fig6_network_ablation.png',
               'fig8_task_policies.png'):
    path = out / name
    assert path.exists() and path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_video_gif_from_demo_with_untrained_policies(tmp_path):
  from acme_metamimic.demonstrations import recording
  demos = recording.record_demonstrations(
      'B', 1, 'features', seed=5, output=str(tmp_path / 'demos'),
      progress=False)
  report = _load_report()
  path = str(tmp_path / 'side_by_side.gif')
  info = report.make_video(path, 'features', demos, 0, None, size=48,
                           stride=20, max_frames=6)
  assert info['frames'] == 6
  import imageio
  frames = imageio.mimread(path)
  assert len(frames) == 6
  assert frames[0].shape[:2] == (48, 3 * 64)   # three 64-wide panels


def _write_evaluation(workdir, train, held_out):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'evaluation.json'), 'w') as f:
    json.dump({'metrics': {
        'imitation_train': {'imitation_reward_per_step': train},
        'imitation_validation': {'imitation_reward_per_step': held_out}}}, f)


def test_demo_count_figure_from_evaluations(tmp_path):
  report = _load_report()
  runs = {'10': [str(tmp_path / 'n10_s0'), str(tmp_path / 'n10_s1')],
          '50': [str(tmp_path / 'n50_s0')]}
  _write_evaluation(runs['10'][0], 0.9, 0.3)
  _write_evaluation(runs['10'][1], 0.7, 0.5)
  _write_evaluation(runs['50'][0], 0.6, 0.55)
  assert report.final_imitation(runs['10'][1]) == {
      'imitation_train': 0.7, 'imitation_validation': 0.5}
  path = report.figure5_demo_counts(runs, str(tmp_path / 'fig.png'))
  assert open(path, 'rb').read()[:8] == b'\x89PNG\r\n\x1a\n'
  missing = str(tmp_path / 'n100')
  result = subprocess.run(
      [sys.executable, _SCRIPT, f'--output_dir={tmp_path}',
       f'--fig5_demos=100={missing}'],
      capture_output=True, text=True, timeout=120, cwd=_ROOT)
  assert result.returncode != 0
  assert os.path.join(missing, 'evaluation.json') + ' is missing' in (
      result.stderr)
  result = subprocess.run(
      [sys.executable, _SCRIPT, f'--output_dir={tmp_path}',
       f'--fig5_demos=ten={runs["50"][0]}'],
      capture_output=True, text=True, timeout=120, cwd=_ROOT)
  assert '--fig5_demos: names must be demo counts' in result.stderr
