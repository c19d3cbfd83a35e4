"""Measures the success rate of a scripted demonstrator style.

Prints one JSON line: style, episodes, success rate, mean episode length,
mean return and wall-clock seconds.
"""

import json
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from acme_metamimic import environments
from acme_metamimic.demonstrations import scripted

_EPISODES = flags.DEFINE_integer('episodes', 100, 'Episodes to run.')
_STYLE = flags.DEFINE_string('style', 'A', 'Demonstrator style.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of initial conditions.')


def main(_):
  logging.set_verbosity(logging.ERROR)
  env = environments.make_environment('features', seed=_SEED.value)
  start = time.time()
  successes, lengths, returns = [], [], []
  for episode in range(_EPISODES.value):
    demonstrator = scripted.ScriptedDemonstrator(
        _STYLE.value, seed=_SEED.value * 100003 + episode)
    result = scripted.run_episode(env, demonstrator)
    successes.append(result['success'])
    lengths.append(len(result['actions']))
    returns.append(float(np.sum(result['rewards'])))
  print(json.dumps({
      'style': _STYLE.value,
      'episodes': _EPISODES.value,
      'success_rate': float(np.mean(successes)),
      'mean_episode_length': float(np.mean(lengths)),
      'mean_return': float(np.mean(returns)),
      'seconds': round(time.time() - start, 1),
  }))


if __name__ == '__main__':
  app.run(main)
