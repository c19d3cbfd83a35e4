"""launch/report.py: figures from a synthetic log directory, a GIF from a real
(short) demo with untrained policies.

The figures are checked for content, not only for being PNG files: the
decoded image has the figure's size and the run colours' curves in it, and
the plotted line data are the logged values (read back from the figure).
"""

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
             task_return=0.1 * i + 0.3 * seed,
             imitation_learner_steps=50 * i,
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


# Matplotlib's first two cycle colours: the first and second run's curves.
_C0, _C1 = (31, 119, 180), (255, 127, 14)


def _decode_png(path):
  """The PNG as an RGB array (PIL decodes it: a truncated file fails)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    assert image.format == 'PNG'
    return np.asarray(image.convert('RGB'))


def _columns_of(image, color, tolerance=12):
  """How many pixel columns hold `color`: a curve spans its axes' width, a
  legend sample only ~30 columns."""
  match = np.all(np.abs(image.astype(int) - color) <= tolerance, axis=-1)
  return int(np.sum(match.any(axis=0)))


def _logged(workdir, label, column):
  with open(os.path.join(workdir, 'logs', label, 'logs.csv')) as f:
    return np.array([float(row[column]) for row in csv.DictReader(f)])


def test_script_writes_figures(runs, tmp_path):
  out = tmp_path / 'report'
  entry = 'metamimic=' + ','.join(runs)
  result = subprocess.run(
      [sys.executable, _SCRIPT, f'--output_dir={out}', f'--fig5={entry}',
       f'--fig5=one seed={runs[0]}', f'--fig6=mlp={runs[0]}',
       f'--fig8={entry}', f'--fig8=d4pg={runs[1]}'],
      capture_output=True, text=True, timeout=120, cwd=_ROOT)
  assert result.returncode == 0, result.stderr[-2000:]
  # (figure, width x height at 100 dpi, colours of its runs' curves)
  for name, size, colors in (
      ('fig5_generalization.png', (1100, 400), (_C0, _C1)),
      ('fig6_network_ablation.png', (600, 400), (_C0,)),
      ('fig8_task_policies.png', (600, 400), (_C0, _C1))):
    image = _decode_png(out / name)
    assert image.shape == (size[1], size[0], 3), name
    white = np.all(image >= 250, axis=-1).mean()
    assert 0.5 < white < 0.98, (name, white)  # Drawn on, not blank.
    # Each run's curves span at least half the figure's width (both axes
    # of fig. 5).
    for color in colors:
      assert _columns_of(image, color) > size[0] // 2, (name, color)
    if len(colors) == 1:
      assert _columns_of(image, _C1) == 0, name
    assert f'[report] wrote {out / name}' in result.stdout


def _figures(report, monkeypatch):
  """Keeps every figure report.py saves, by file name, for inspection."""
  figures = {}
  save = report._save  # pylint: disable=protected-access

  def keep(fig, path):
    figures[os.path.basename(path)] = fig
    return save(fig, path)

  monkeypatch.setattr(report, '_save', keep)
  return figures


def test_figures_plot_the_logged_values(runs, tmp_path, monkeypatch):
  report = _load_report()
  figures = _figures(report, monkeypatch)
  report.figure8({'metamimic': runs, 'd4pg': [runs[1]]},
                 str(tmp_path / 'fig8.png'), smooth=1)
  (axis,) = figures['fig8.png'].axes
  lines = {line.get_label(): line for line in axis.get_lines()}
  assert set(lines) == {'metamimic (n=2)', 'd4pg (n=1)'}
  assert axis.get_xlabel() == 'task learner steps'
  steps = _logged(runs[0], 'evaluator_task', 'task_learner_steps')
  returns = [_logged(r, 'evaluator_task', 'episode_return') for r in runs]
  x, y = lines['d4pg (n=1)'].get_data()
  assert x[0] == steps[0] and x[-1] == steps[-1]
  np.testing.assert_allclose(y, np.interp(x, steps, returns[1]))
  # Two seeds: their mean, inside one shaded min-max band.
  x, y = lines['metamimic (n=2)'].get_data()
  np.testing.assert_allclose(y, np.interp(x, steps, np.mean(returns, 0)))
  assert len(axis.collections) == 1

  report.figure5({'metamimic': runs}, str(tmp_path / 'fig5.png'), smooth=1)
  imitation_axis, task_axis = figures['fig5.png'].axes
  lines = {line.get_label(): line for line in imitation_axis.get_lines()}
  assert lines['metamimic held-out (n=2)'].get_linestyle() == '-'
  assert lines['metamimic train (n=2)'].get_linestyle() == '--'
  label = 'evaluator_imitation_validation'
  steps = _logged(runs[0], label, 'imitation_learner_steps')
  held_out = np.mean([_logged(r, label, 'imitation_return') for r in runs], 0)
  x, y = lines['metamimic held-out (n=2)'].get_data()
  np.testing.assert_allclose(y, np.interp(x, steps, held_out))
  # Logged task return: 0.1 per 50 learner steps, seed i starts at 0.3 i.
  lines = {line.get_label(): line for line in task_axis.get_lines()}
  for split in ('held-out', 'train'):
    x, y = lines[f'metamimic {split} (n=2)'].get_data()
    np.testing.assert_allclose(y, x / 500. + 0.15, atol=1e-12)


def test_old_logs_put_every_run_on_evaluator_steps(runs, tmp_path,
                                                   monkeypatch):
  """A log without learner steps (before the counter started them at 0) puts
  every curve of the figure on evaluator env steps, not a mixed axis."""
  report = _load_report()
  figures = _figures(report, monkeypatch)
  label = 'evaluator_task'
  old_run = str(tmp_path / 'old')
  with open(os.path.join(runs[0], 'logs', label, 'logs.csv')) as f:
    rows = [{k: v for k, v in row.items() if k != 'task_learner_steps'}
            for row in csv.DictReader(f)]
  _write_log(old_run, label, rows)
  report.figure8({'new': [runs[1]], 'old': [old_run]},
                 str(tmp_path / 'fig8.png'), smooth=1)
  (axis,) = figures['fig8.png'].axes
  assert axis.get_xlabel() == (
      'evaluator env steps (not every log has a learner-step column)')
  lines = {line.get_label(): line for line in axis.get_lines()}
  steps = _logged(runs[1], label, 'evaluator_task_steps')
  for name in ('new (n=1)', 'old (n=1)'):
    x, _ = lines[name].get_data()
    assert x[0] == steps[0] and x[-1] == steps[-1]


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
  assert info['demo_task_return'] > 0.  # The demo earned task reward.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as gif:
    assert gif.format == 'GIF' and gif.n_frames == 6
    assert gif.size == (3 * 64, 48)   # three 64-wide panels, 48 high
  import imageio
  frames = [np.asarray(frame)[..., :3].astype(int)
            for frame in imageio.mimread(path)]
  assert len(frames) == 6
  assert frames[0].shape == (48, 3 * 64, 3)
  # Below its title (the top 16 rows), each panel shows a rendered scene, not
  # a flat colour...
  scenes = [[frame[16:, 64 * panel:64 * (panel + 1)] for panel in range(3)]
            for frame in frames]
  for panels in scenes:
    assert min(scene.std() for scene in panels) > 10.
  # ...and the demo panel plays the demo: the arm moves between the first and
  # the last frame.
  assert np.abs(scenes[0][0] - scenes[-1][0]).mean() > 1.


def _write_evaluation(workdir, train, held_out):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'evaluation.json'), 'w') as f:
    json.dump({'metrics': {
        'imitation_train': {'imitation_reward_per_step': train},
        'imitation_validation': {'imitation_reward_per_step': held_out}}}, f)


def test_demo_count_figure_from_evaluations(tmp_path, monkeypatch):
  report = _load_report()
  runs = {'10': [str(tmp_path / 'n10_s0'), str(tmp_path / 'n10_s1')],
          '50': [str(tmp_path / 'n50_s0')]}
  _write_evaluation(runs['10'][0], 0.9, 0.3)
  _write_evaluation(runs['10'][1], 0.7, 0.5)
  _write_evaluation(runs['50'][0], 0.6, 0.55)
  assert report.final_imitation(runs['10'][1]) == {
      'imitation_train': 0.7, 'imitation_validation': 0.5}
  figures = _figures(report, monkeypatch)
  path = report.figure5_demo_counts(runs, str(tmp_path / 'fig.png'))
  assert _decode_png(path).shape == (400, 1000, 3)
  values, gaps = figures['fig.png'].axes
  # Error bars: the mean of the seeds at each demo count, min-max bars.
  points = {c.get_label(): c.lines[0].get_data() for c in values.containers}
  np.testing.assert_array_equal(points['training demos'][0], [10., 50.])
  np.testing.assert_allclose(points['training demos'][1], [0.8, 0.6])
  np.testing.assert_allclose(points['held-out demos'][1], [0.4, 0.55])
  (gap,) = gaps.containers
  np.testing.assert_allclose(gap.lines[0].get_data()[1], [0.4, 0.05])
  low, high = gap.lines[2][0].get_segments()[0][:, 1]
  assert (low, high) == pytest.approx((0.2, 0.6))  # 10 demos: 0.6 and 0.2
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
