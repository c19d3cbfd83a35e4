"""Learning-curve figures and a side-by-side video from MetaMimic runs.

    python launch/report.py --output_dir=workdir/report \
        --fig5='20 demos=workdir/s0,workdir/s1' --fig5='5 demos=workdir/d5' \
        --fig6='paper resnet=workdir/r0' --fig6='mlp=workdir/m0' \
        --fig8='metamimic=workdir/s0' --fig8='d4pg=workdir/d4pg_s0' \
        --video_workdir=workdir/s0 \
        --video_demos=data/demos_validation_features --video=report.gif

Each --figN entry is `name=workdir[,workdir...]`: one curve per name, several
workdirs (seeds) drawn as the mean with a shaded min-max spread. Curves come
from the CSV logs run_local writes (<workdir>/logs/<label>/logs.csv, Acme
CSVLogger columns):

  fig5_generalization.png  (paper fig. 5) imitation return and task return of
      the greedy imitation policy on training (style A, dashed) and held-out
      (style B, solid) demos, per run name (e.g. number of training demos);
      evaluator_imitation_{train,validation}.
  fig6_network_ablation.png  (paper fig. 6) held-out imitation return per
      network variant; evaluator_imitation_validation.
  fig8_task_policies.png  (paper fig. 8) greedy task policy episode return per
      agent (MetaMimic, D4PG, D4PGfD, ...); evaluator_task.
  fig5_demo_counts.png  (--fig5_demos='N=workdir[,workdir...]', N the number
      of training demos) the final one-shot imitation reward per step on
      training and held-out demos, and their gap, against N; read from
      evaluate.py's <workdir>/evaluation.json.

The x axis is the learner step count logged with each evaluator row
(`imitation_learner_steps` / `task_learner_steps`). Where one run's CSV has
no learner column, every run of that figure falls back to the evaluator's
own `<label>_steps` (Acme's CSVLogger fixes its columns at the first row,
which an evaluator writes before the learner's first step; since the
counter node starts every learner's count at 0, new runs always have it,
and older stored runs do not); the axis label names the column used.

--video renders one held-out demo (its recorded physics states) next to the
greedy imitation policy following it and the greedy task policy started from
the same state, as a GIF (or MP4 if the name ends in .mp4, via ffmpeg).
"""

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from acme_metamimic import csv_logs

_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'workdir/report',
                                  'Where the PNGs (and a relative --video) go.')
_FIG5 = flags.DEFINE_multi_string('fig5', [], 'name=workdir[,workdir...]')
_FIG6 = flags.DEFINE_multi_string('fig6', [], 'name=workdir[,workdir...]')
_FIG8 = flags.DEFINE_multi_string('fig8', [], 'name=workdir[,workdir...]')
_FIG5_DEMOS = flags.DEFINE_multi_string(
    'fig5_demos', [], 'N=workdir[,workdir...], N = number of training demos.')
_SMOOTH = flags.DEFINE_integer('smooth', 5,
                               'Moving-average window over evaluator rows.')
_VIDEO = flags.DEFINE_string('video', None,
                             'Video file (.gif or .mp4); none if unset.')
_VIDEO_WORKDIR = flags.DEFINE_string(
    'video_workdir', None, 'Workdir whose checkpoints drive the policies in '
    'the video; untrained networks if unset.')
_VIDEO_DEMOS = flags.DEFINE_string('video_demos',
                                   'data/demos_validation_features',
                                   'Demo set (held-out) for the video.')
_VIDEO_DEMO_INDEX = flags.DEFINE_integer('video_demo_index', 0,
                                         'Which demo of --video_demos.')
_VIDEO_MAX_FRAMES = flags.DEFINE_integer('video_max_frames', 200,
                                         'Frames per panel (after stride).')
_VIDEO_STRIDE = flags.DEFINE_integer('video_stride', 2,
                                     'Keep every k-th simulation step.')
_VIDEO_SIZE = flags.DEFINE_integer('video_size', 160,
                                   'Panel height; width is 4/3 of it.')
_PRESET = flags.DEFINE_string('preset', 'features', 'Environment preset.')

Curve = Tuple[np.ndarray, np.ndarray]


def parse_runs(entries: Sequence[str]) -> Dict[str, List[str]]:
  """['name=wd1,wd2', ...] -> {name: [wd1, wd2]} (order kept)."""
  runs: Dict[str, List[str]] = {}
  for entry in entries:
    name, sep, paths = entry.partition('=')
    if not sep or not paths:
      raise app.UsageError(f'Expected name=workdir[,workdir...], got {entry!r}.')
    runs.setdefault(name.strip(), []).extend(
        p.strip() for p in paths.split(',') if p.strip())
  return runs


def load_curve(workdir: str, label: str, column: str,
               x_keys: Sequence[str], smooth: int = 1
               ) -> Optional[Tuple[np.ndarray, np.ndarray, str]]:
  """(x, y, x column) of `column` in <workdir>/logs/<label>/logs.csv.

  x is the first of `x_keys` in the CSV header (Acme's CSVLogger fixes the
  columns at the first row), rows sorted by x, y smoothed by a moving average.
  """
  rows = csv_logs.read_csv_log(workdir, label)
  x_key = next((k for k in x_keys if rows and k in rows[0]), None)
  rows = [r for r in rows if column in r and x_key in r]
  if not rows or x_key is None:
    return None
  x = np.array([r[x_key] for r in rows], np.float64)
  y = np.array([r[column] for r in rows], np.float64)
  order = np.argsort(x, kind='stable')
  x, y = x[order], y[order]
  if smooth > 1 and len(y) >= smooth:
    kernel = np.ones(smooth) / smooth
    y = np.convolve(y, kernel, mode='valid')
    x = x[smooth - 1:]
  return x, y, x_key


def aggregate(curves: Sequence[Curve], num_points: int = 100
              ) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray,
                                  np.ndarray]]:
  """Seeds -> (x, mean, min, max) on the x range all seeds cover."""
  curves = [c for c in curves if c is not None and len(c[0])]
  if not curves:
    return None
  low = max(c[0][0] for c in curves)
  high = min(c[0][-1] for c in curves)
  if high <= low:  # Single points or disjoint ranges: no common grid.
    x = np.array([low])
  else:
    x = np.linspace(low, high, num_points)
  ys = np.stack([np.interp(x, cx, cy) for cx, cy in curves])
  return x, ys.mean(0), ys.min(0), ys.max(0)


def _plot(axis, runs: Dict[str, List[str]], label: str, column: str,
          x_keys: Sequence[str], smooth: int, style: str = '-',
          suffix: str = '', colors: Optional[Dict[str, str]] = None
          ) -> set:
  """Draws one curve per run name; returns the x columns used."""
  used = set()
  for index, (name, workdirs) in enumerate(runs.items()):
    curves = []
    for workdir in workdirs:
      curve = load_curve(workdir, label, column, x_keys, smooth)
      if curve is not None:
        curves.append(curve[:2])
        used.add(curve[2])
    result = aggregate(curves)
    if result is None:
      continue
    x, mean, low, high = result
    color = (colors or {}).get(name, f'C{index}')
    marker = 'o' if len(x) == 1 else None
    axis.plot(x, mean, style, color=color, marker=marker,
              label=f'{name}{suffix} (n={len(workdirs)})')
    if len(workdirs) > 1:
      axis.fill_between(x, low, high, color=color, alpha=0.2)
  return used


def _x_keys(label: str, runs: Dict[str, List[str]]) -> Tuple[str, ...]:
  """Learner steps if every run's evaluator CSV has them, else its own steps.

  One column for every run of a figure: logs written before the evaluators
  carried learner steps from their first row have only evaluator env steps,
  and a figure that put those beside learner-step curves (or averaged seeds
  across the two) would compare different axes.
  """
  learner = ('task_learner_steps' if label == 'evaluator_task'
             else 'imitation_learner_steps')
  logs = [csv_logs.read_csv_log(workdir, label)
          for workdirs in runs.values() for workdir in workdirs]
  if all(learner in rows[0] for rows in logs if rows):
    return (learner,)
  return (f'{label}_steps',)


def _x_label(names: set) -> str:
  learner = {n for n in names if n.endswith('learner_steps')}
  if not names:
    return 'steps'
  if learner == names:
    return ' / '.join(sorted(n.replace('_', ' ') for n in names))
  if not learner:
    return 'evaluator env steps (not every log has a learner-step column)'
  return 'learner steps or evaluator env steps (mixed)'


def figure5(runs: Dict[str, List[str]], path: str, smooth: int) -> str:
  """Train vs held-out imitation return and task return."""
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  colors = {name: f'C{i}' for i, name in enumerate(runs)}
  for axis, column, title in ((axes[0], 'imitation_return',
                               'Imitation return (eq. 2)'),
                              (axes[1], 'task_return',
                               'Task return while imitating')):
    x_names = set()
    for label, style, suffix in (('evaluator_imitation_validation', '-',
                                  ' held-out'),
                                 ('evaluator_imitation_train', '--', ' train')):
      x_names |= _plot(axis, runs, label, column, _x_keys(label, runs),
                       smooth, style, suffix, colors)
    axis.set_title(title)
    axis.set_xlabel(_x_label(x_names))
    axis.legend(fontsize=7)
  fig.suptitle('Fig. 5: one-shot imitation, training vs held-out demos')
  return _save(fig, path)


def figure6(runs: Dict[str, List[str]], path: str, smooth: int) -> str:
  """Held-out imitation return per network variant."""
  fig, axis = plt.subplots(figsize=(6, 4))
  label = 'evaluator_imitation_validation'
  axis.set_xlabel(_x_label(_plot(axis, runs, label, 'imitation_return',
                                 _x_keys(label, runs), smooth)))
  axis.set_ylabel('held-out imitation return')
  axis.set_title('Fig. 6: network ablation')
  axis.legend(fontsize=7)
  return _save(fig, path)


def figure8(runs: Dict[str, List[str]], path: str, smooth: int) -> str:
  """Greedy task policy return per agent."""
  fig, axis = plt.subplots(figsize=(6, 4))
  axis.set_xlabel(_x_label(_plot(axis, runs, 'evaluator_task',
                                 'episode_return',
                                 _x_keys('evaluator_task', runs),
                                 smooth)))
  axis.set_ylabel('task return (greedy task policy)')
  axis.set_title('Fig. 8: task policies vs baselines')
  axis.legend(fontsize=7)
  return _save(fig, path)


def final_imitation(workdir: str) -> Dict[str, float]:
  """Reward per step on training/held-out demos, from evaluation.json."""
  path = os.path.join(workdir, 'evaluation.json')
  if not os.path.isfile(path):
    raise app.UsageError(f'{path} is missing: run launch/evaluate.py '
                         f'--workdir={workdir} --output={path} first.')
  with open(path) as f:
    metrics = json.load(f).get('metrics', {})
  values = {}
  for split in ('imitation_train', 'imitation_validation'):
    value = metrics.get(split, {}).get('imitation_reward_per_step')
    if value is None:
      raise app.UsageError(f'{path}: field metrics.{split}.'
                           'imitation_reward_per_step is missing.')
    values[split] = value
  return values


def figure5_demo_counts(runs: Dict[str, List[str]], path: str) -> str:
  """Final train / held-out imitation reward and their gap vs #demos."""
  try:
    counts = sorted((int(name), workdirs) for name, workdirs in runs.items())
  except ValueError as e:
    raise app.UsageError(f'--fig5_demos: names must be demo counts ({e}).')
  x = np.array([count for count, _ in counts], np.float64)
  results = [[final_imitation(w) for w in workdirs] for _, workdirs in counts]
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))

  def draw(axis, values, style, label):
    mean = np.array([np.mean(v) for v in values])
    low = np.array([np.min(v) for v in values])
    high = np.array([np.max(v) for v in values])
    axis.errorbar(x, mean, yerr=[mean - low, high - mean], fmt=style,
                  capsize=3, label=label)

  for split, style, label in (('imitation_train', 'o--', 'training demos'),
                              ('imitation_validation', 'o-',
                               'held-out demos')):
    draw(axes[0], [[r[split] for r in seeds] for seeds in results], style,
         label)
  draw(axes[1], [[r['imitation_train'] - r['imitation_validation']
                  for r in seeds] for seeds in results], 'o-',
       'train - held-out')
  axes[1].axhline(0., color='gray', linewidth=0.8)
  for axis, title in ((axes[0], 'One-shot imitation reward per step'),
                      (axes[1], 'Generalization gap')):
    axis.set_xscale('log')
    axis.set_xticks(x)
    axis.set_xticklabels([str(int(c)) for c in x])
    axis.set_xlabel('training demos (seeds: mean, min-max bars)')
    axis.set_title(title)
    axis.legend(fontsize=7)
  fig.suptitle('Fig. 5: more training demos vs generalization')
  return _save(fig, path)


def _save(fig, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


# Video.


def _label(frame: np.ndarray, text: str) -> np.ndarray:
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  image = Image.fromarray(frame)
  ImageDraw.Draw(image).text((4, 2), text, fill=(255, 255, 0))
  return np.asarray(image)


def render_states(environment, states: np.ndarray, height: int, width: int,
                  stride: int, max_frames: int) -> List[np.ndarray]:
  """Renders physics states (every `stride`-th, at most `max_frames`)."""
  frames = []
  for state in states[::stride][:max_frames]:
    environment.reset_to_state(state)
    frames.append(environment.render(height=height, width=width))
  return frames


def side_by_side(panels: Sequence[Tuple[str, List[np.ndarray]]]
                 ) -> List[np.ndarray]:
  """Pads panels to equal length (holding the last frame) and tiles them."""
  length = max(len(frames) for _, frames in panels)
  video = []
  for t in range(length):
    row = []
    for title, frames in panels:
      frame = frames[min(t, len(frames) - 1)]
      done = ' (done)' if t >= len(frames) else ''
      row.append(_label(frame, f'{title}{done}  t={min(t, len(frames) - 1)}'))
    video.append(np.concatenate(row, axis=1))
  return video


def write_video(frames: Sequence[np.ndarray], path: str, fps: int = 10) -> str:
  import imageio  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  if path.endswith('.mp4'):
    imageio.mimsave(path, list(frames), fps=fps, macro_block_size=1)
  else:
    imageio.mimsave(path, list(frames), duration=1000. / fps, loop=0)
  return path


def make_video(path: str, preset: str, demos_path: str, demo_index: int,
               workdir: Optional[str], size: int, stride: int,
               max_frames: int) -> Dict[str, object]:
  """Demo | imitation policy following it | task policy from its start."""
  from acme import specs  # pylint: disable=g-import-not-at-top
  from acme_metamimic import builder as builder_lib  # pylint: disable=g-import-not-at-top
  from acme_metamimic import evaluation  # pylint: disable=g-import-not-at-top
  from acme_metamimic import presets  # pylint: disable=g-import-not-at-top
  from acme_metamimic.environments import imitation  # pylint: disable=g-import-not-at-top

  config = presets.make_config(
      preset, early_termination='none',
      **(evaluation.network_overrides(workdir) if workdir else {}))
  builder = builder_lib.MetaMimicBuilder(config)
  environment = presets.make_environment(preset, seed=0)
  spec = specs.make_environment_spec(environment)
  imitation_networks, task_networks = evaluation.build_networks(
      preset, config, spec)
  source = 'untrained'
  if workdir:
    steps = [evaluation.restore_policy_networks(n, workdir, label)
             for n, label in ((imitation_networks,
                               evaluation.IMITATION_LEARNER),
                              (task_networks, evaluation.TASK_LEARNER))]
    source = f'checkpoint {workdir} (learner steps {steps})'
  demos = presets.load_demonstrations(preset, demos_path,
                                      max_episodes=demo_index + 1)
  demo = demos[demo_index]
  imitation_policy = evaluation.make_greedy_policy(
      imitation_networks, imitation.imitation_environment_spec(spec))
  task_policy = evaluation.make_greedy_policy(task_networks, spec)
  imitation_env = builder.make_imitation_environment(environment, [demo])
  followed = evaluation.follow_demo(imitation_env, imitation_policy, demo,
                                    builder.make_imitation_reward(),
                                    keep_states=True)
  task = evaluation.run_task_policy(environment, task_policy, demo,
                                    keep_states=True)
  height, width = size, size * 4 // 3
  render = lambda states: render_states(environment, states, height, width,
                                        stride, max_frames)
  frames = side_by_side([
      (f'demo {demo.episode_id}', render(demo.physics_states)),
      ('imitation policy', render(followed.physics_states)),
      ('task policy', render(task.physics_states)),
  ])
  write_video(frames, path)
  return dict(path=path, frames=len(frames), source=source,
              demo_task_return=float(np.sum(demo.rewards)),
              imitation_return=float(np.sum(followed.imitation_rewards)),
              imitation_task_return=float(np.sum(followed.task_rewards)),
              task_policy_return=float(np.sum(task.task_rewards)))


def main(argv):
  del argv
  output_dir = _OUTPUT_DIR.value
  written = []
  for runs_flag, make, name in ((_FIG5, figure5, 'fig5_generalization.png'),
                                (_FIG6, figure6, 'fig6_network_ablation.png'),
                                (_FIG8, figure8, 'fig8_task_policies.png')):
    if runs_flag.value:
      written.append(make(parse_runs(runs_flag.value),
                          os.path.join(output_dir, name), _SMOOTH.value))
  if _FIG5_DEMOS.value:
    written.append(figure5_demo_counts(
        parse_runs(_FIG5_DEMOS.value),
        os.path.join(output_dir, 'fig5_demo_counts.png')))
  if _VIDEO.value:
    path = _VIDEO.value
    if not os.path.isabs(path) and not os.path.dirname(path):
      path = os.path.join(output_dir, path)
    info = make_video(path, _PRESET.value, _VIDEO_DEMOS.value,
                      _VIDEO_DEMO_INDEX.value, _VIDEO_WORKDIR.value,
                      _VIDEO_SIZE.value, _VIDEO_STRIDE.value,
                      _VIDEO_MAX_FRAMES.value)
    print(f'[report] video: {info}', flush=True)
    written.append(path)
  if not written:
    raise app.UsageError('Nothing to do: give --fig5/--fig6/--fig8/'
                         '--fig5_demos or --video.')
  for path in written:
    print(f'[report] wrote {path}', flush=True)


if __name__ == '__main__':
  app.run(main)
