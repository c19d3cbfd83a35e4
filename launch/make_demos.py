"""Records scripted demonstrations into a TFDS dataset in RLDS layout.

    python launch/make_demos.py --style=A --num_episodes=100 \
        --preset=features --seed=0 --output=data/demos_A

Writes atomically: the dataset appears at --output only when complete;
`tfds.builder_from_directory(output)` opens it.
"""

import os

from absl import app
from absl import flags

from acme_metamimic.demonstrations import recording

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


def main(argv):
  del argv
  if not _OUTPUT.value:
    raise app.UsageError('--output is required.')
  recording.record_demonstrations(_STYLE.value, _NUM_EPISODES.value, _PRESET.value,
                      _SEED.value, os.path.expanduser(_OUTPUT.value),
                      _IMAGE_SIZE.value, _OVERWRITE.value,
                      _ONLY_SUCCESSFUL.value, _PROGRESS.value)


if __name__ == '__main__':
  app.run(main)
