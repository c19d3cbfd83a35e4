"""Records scripted demonstrations into a TFDS/RLDS dataset, with progress."""

import time

from absl import logging
import tqdm

from acme_metamimic import environments
from acme_metamimic.demonstrations import dataset
from acme_metamimic.demonstrations import scripted


def record_demonstrations(style: str, num_episodes: int, preset: str, seed: int,
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
