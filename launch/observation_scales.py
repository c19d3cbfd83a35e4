"""Writes the fixed observation normalisation of the features networks.

`MetaMimicConfig.observation_normalization` makes the observation encoder feed
its torso (x - offset) / scale for every vector key, clipped to
+-`networks.NORMALIZED_CLIP`, instead of the raw values: joint angles in
radians, joint velocities, positions in metres whose task-relevant
differences are centimetres. The offsets and scales are the per-dimension
mean and standard deviation over every frame of a demo set (the scripted
demonstrators' state distribution, which the imitation policy is asked to
follow), with the scale floored at `SCALE_FLOOR` for dimensions that barely
move in the demos. This script computes them and writes them, with the
command that made them, into acme_metamimic/environments/observation_scales.py:

    .venv/bin/python launch/observation_scales.py \
        --demos=data/demos_train_features

(data/demos_train_features is what the main job records with seed 0.)
"""

import argparse
import os
import sys
import textwrap
from typing import Dict, Sequence, Tuple

import numpy as np

from acme_metamimic import presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, 'acme_metamimic', 'environments',
                      'observation_scales.py')
# Dimensions whose demo spread is below 1 cm (or 0.01 rad) are scaled as if
# it were 1 cm: a constant in the demos is not blown up into a huge input
# when the policy moves it.
SCALE_FLOOR = 0.01


def demo_statistics(demos, keys: Sequence[str]
                    ) -> Dict[str, Tuple[Tuple[float, ...], Tuple[float, ...]]]:
  """key -> (per-dimension mean, floored standard deviation) over all frames."""
  statistics = {}
  for key in keys:
    frames = np.concatenate([np.asarray(d.observations[key], np.float64)
                             .reshape(len(d.observations[key]), -1)
                             for d in demos])
    mean = frames.mean(axis=0)
    scale = np.maximum(frames.std(axis=0), SCALE_FLOOR)
    statistics[key] = (tuple(float(f'{v:.6g}') for v in mean),
                       tuple(float(f'{v:.6g}') for v in scale))
  return statistics


def module_text(statistics, source: str, num_demos: int,
                num_frames: int) -> str:
  lines = [
      '"""Fixed observation normalisation of the features preset (generated).',
      '',
      'Per-dimension mean (offset) and standard deviation (scale, floored at',
      f'{SCALE_FLOOR}) over the {num_frames} frames of the {num_demos} demos '
      f'in {source},',
      'written by',
      '',
      f'    .venv/bin/python launch/observation_scales.py --demos={source}',
      '',
      'Do not edit by hand; `MetaMimicConfig.observation_normalization` uses',
      'them (see launch/observation_scales.py).',
      '"""',
      '',
      'NORMALIZATION = {']
  for key, (offset, scale) in statistics.items():
    lines.append(f'    {key!r}: (')
    for values in (offset, scale):
      lines += textwrap.wrap(', '.join(repr(v) for v in values) + ',',
                             width=79, initial_indent='        (',
                             subsequent_indent='         ')
      lines[-1] += '),'
    lines.append('    ),')
  lines.append('}')
  return '\n'.join(lines) + '\n'


def main():
  # argparse, not absl flags: tests import this module beside scripts that
  # define flags of the same names.
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--demos', default='data/demos_train_features',
                      help='Demo set to measure (features preset).')
  parser.add_argument('--output', default=OUTPUT,
                      help='Python module to write.')
  args = parser.parse_args()
  setup = presets.get('features')
  demos = presets.load_demonstrations('features', args.demos)
  environment = presets.make_environment('features', seed=0)
  keys = [k for k in environment.observation_spec() if k != 'image']
  statistics = demo_statistics(demos, keys)
  frames = sum(len(next(iter(d.observations.values()))) for d in demos)
  source = (os.path.relpath(args.demos, ROOT) if os.path.isabs(args.demos)
            else args.demos)
  text = module_text(statistics, source, len(demos), frames)
  with open(args.output, 'w') as f:
    f.write(text)
  for key, (offset, scale) in statistics.items():
    marker = ' (used)' if key in setup.observation_keys else ''
    print(f'{key}{marker}: scale min {min(scale):.3g} max {max(scale):.3g}',
          file=sys.stderr)
  print(f'[observation_scales] {len(demos)} demos, {frames} frames -> '
        f'{args.output}')


if __name__ == '__main__':
  main()
