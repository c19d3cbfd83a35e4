"""Benchmarks environment steps/s with random actions; prints one JSON object.

Measures the bare dm_control stack-2-bricks features `composer.Environment`
(25 Hz, all its feature observables), our `JacoStack` features preset and the
vision preset (128x128 images) with shadows/reflections off and on.
"""

import json
import os
import time

os.environ.setdefault('MUJOCO_GL', 'egl')

# pylint: disable=g-import-not-at-top,wrong-import-position
from dm_control import composer
from dm_control.manipulation import bricks
import numpy as np

from acme_metamimic.environments import jaco_stack
# pylint: enable=g-import-not-at-top,wrong-import-position


def _steps_per_second(reset, step, action_spec, steps, seed=0):
  rng = np.random.default_rng(seed)
  low, high = action_spec.minimum, action_spec.maximum
  actions = rng.uniform(low, high, (steps, action_spec.shape[0]))
  reset()
  step(actions[0])
  start = time.perf_counter()
  for action in actions:
    step(action)
  return steps / (time.perf_counter() - start)


def main():
  bare = composer.Environment(bricks.stack_2_bricks_features(), random_state=0)
  results = {
      'bare_dm_control_features': _steps_per_second(
          bare.reset, bare.step, bare.action_spec(), 1000),
  }
  variants = {
      'jaco_stack_features': dict(preset='features'),
      'jaco_stack_vision_128': dict(preset='vision', image_size=128),
      'jaco_stack_vision_128_shadows_reflections': dict(
          preset='vision', image_size=128, shadows=True, reflections=True),
  }
  for name, kwargs in variants.items():
    env = jaco_stack.make_environment(seed=0, episode_length=10**6, **kwargs)
    steps = 1000 if kwargs['preset'] == 'features' else 200
    results[name] = _steps_per_second(
        env.reset, env.step, env.action_spec(), steps)
  bare_rate = results['bare_dm_control_features']
  output = {'steps_per_second': {k: round(v, 1) for k, v in results.items()},
            'ratio_to_bare': {k: round(v / bare_rate, 3)
                              for k, v in results.items()},
            'control_hz': {'bare_dm_control_features': 25, 'jaco_stack': 20},
            'mujoco_gl': os.environ['MUJOCO_GL'],
            'cpus': os.cpu_count()}
  print(json.dumps(output))


if __name__ == '__main__':
  main()
