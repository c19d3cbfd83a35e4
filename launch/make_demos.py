"""Records scripted demonstrations into an RLDS-shaped TFRecord dataset.

    python launch/make_demos.py --style=A --num_episodes=100 \
        --preset=features --seed=0 --output=data/demos_A

Writes atomically: the dataset appears at --output only when complete.
"""

import os
import time

from absl import app
from absl import flags
from absl import logging
import tqdm

from acme_metamimic import environments
from acme_metamimic.demonstrations import dataset
from acme_metamimic.demonstrations import scripted

_STYLE = flags.DEFINE_enum('style', 'A', ['A', 'B'],
                           'Demonstrator: A (training) or B (validation).')
_NUM_EPISODES = flags.DEFINE_integer('num_episodes', 100,
                                     'Number of episodes to record.')
_PRESET = flags.DEFINE_enum('preset', 'features', ['features', 'vision'],
                            'Environment preset.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the initial conditions.')
_OUTPUT = flags.DEFINE_string('output', None, 'Dataset directory to create.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 128,
                                   'Image size of the vision preset.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Replace an existing dataset at --output.')
_ONLY_SUCCESSFUL = flags.DEFINE_bool(
    'only_successful', False, 'Keep recording until --num_episodes episodes '
    'stacked the brick (failed ones are dropped).')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar.')


def make_demonstrations(style: str, num_episodes: int, preset: str, seed: int,
                        output: str, image_size: int = 128,
                        overwrite: bool = False,
                        only_successful: bool = False,
                        progress: bool = True) -> str:
  """Records `num_episodes` demos of `style` and writes them to `output`."""
  if num_episodes <= 0:
    raise ValueError(f'--num_episodes must be positive, got {num_episodes}.')
  env = environments.make_environment(preset, seed=seed, image_size=image_size)
  demonstrator = scripted.ScriptedDemonstrator(style, seed=seed)
  stats = dict(attempts=0, successes=0)

  def episodes():
    bar = tqdm.tqdm(total=num_episodes, desc=f'demos {style}',
                    disable=not progress, unit='ep')
    kept = 0
    while kept < num_episodes:
      episode = scripted.run_episode(env, demonstrator)
      stats['attempts'] += 1
      stats['successes'] += episode['success']
      if only_successful and not episode['success']:
        continue
      kept += 1
      bar.update(1)
      bar.set_postfix(success=f"{stats['successes'] / stats['attempts']:.2f}")
      yield episode
    bar.close()

  start = time.time()
  path = dataset.write_demonstrations(
      episodes(), output,
      metadata=dict(preset=preset, style=style, seed=seed,
                    image_size=image_size if preset == 'vision' else None,
                    control_timestep=env.config.control_timestep,
                    only_successful=only_successful),
      overwrite=overwrite)
  logging.info('Wrote %d demos (style %s) to %s in %.1fs; demonstrator '
               'success rate %.2f over %d attempts.', num_episodes, style,
               path, time.time() - start,
               stats['successes'] / stats['attempts'], stats['attempts'])
  return path


def main(argv):
  del argv
  if not _OUTPUT.value:
    raise app.UsageError('--output is required.')
  make_demonstrations(_STYLE.value, _NUM_EPISODES.value, _PRESET.value,
                      _SEED.value, os.path.expanduser(_OUTPUT.value),
                      _IMAGE_SIZE.value, _OVERWRITE.value,
                      _ONLY_SUCCESSFUL.value, _PROGRESS.value)


if __name__ == '__main__':
  app.run(main)
