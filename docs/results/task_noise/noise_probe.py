"""The task policy under each exploration noise, from fresh starts.

Not project code: a probe kept beside the results it wrote. A run's task
actors start from the environment's own resets (the held-out kind of start)
and act with the task policy plus the exploration noise; the task learner's
only lifts from such starts are the ones these actors make. This restores a
run's task policy (target networks, as the evaluator) and counts, for each
noise, how many of `--episodes` fresh starts reach, lift and stack, and the
mean return, so that a noise can be ranked before any training run.

    MUJOCO_GL=egl python docs/results/task_noise/noise_probe.py \
        --workdir=/tmp/screens/task_levers_60min/armD200B10_seed1 \
        --output=docs/results/task_noise/task_levers_60min_armD200B10_seed1.json
"""
import json
import time

from absl import app
from absl import flags
from acme import specs
from acme.tf import utils as tf2_utils
import numpy as np
import tensorflow as tf

from acme_metamimic import config as config_lib
from acme_metamimic import evaluation
from acme_metamimic import networks as networks_lib
from acme_metamimic import presets
from acme_metamimic.environments import jaco_stack

_WORKDIR = flags.DEFINE_string('workdir', None, 'A run_local workdir.')
_EPISODES = flags.DEFINE_integer('episodes', 20, 'Fresh starts per noise.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the starts and the noise.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON written here.')

# name -> sigma (scalar, or per action dimension: 6 arm joints, 3 fingers).
NOISES = {
    'greedy': 0.,
    'sigma 0.3 (default)': 0.3,
    'arm 0.3, fingers 0.02': (0.3,) * 6 + (0.02,) * 3,
    'arm 0.3, fingers 0': (0.3,) * 6 + (0.,) * 3,
}


def main(_):
  config = config_lib.features_config(
      **evaluation.network_overrides(_WORKDIR.value))
  environment = presets.make_environment('features', seed=_SEED.value)
  spec = specs.make_environment_spec(environment)
  _, networks = evaluation.build_networks('features', config, spec)
  steps = evaluation.restore_policy_networks(networks, _WORKDIR.value,
                                             evaluation.TASK_LEARNER)
  results = {}
  for name, sigma in NOISES.items():
    tf.random.set_seed(_SEED.value)
    environment = presets.make_environment('features', seed=_SEED.value)
    module = networks_lib.make_behavior_policy(networks, spec, sigma)
    policy = tf.function(module)
    start, rows = time.time(), []
    for _ in range(_EPISODES.value):
      timestep, rewards = environment.reset(), []
      while not timestep.last():
        batched = tf2_utils.add_batch_dim(timestep.observation)
        action = tf2_utils.to_numpy_squeeze(policy(batched))
        timestep = environment.step(action)
        rewards.append(float(timestep.reward))
      rewards = np.asarray(rewards)
      rows.append(dict(
          return_=float(rewards.sum()), steps=len(rewards),
          reached=bool(rewards.max() >= jaco_stack.REWARD_REACH),
          lifted=bool(rewards.max() >= jaco_stack.REWARD_LIFT),
          stacked=bool(rewards.max() >= jaco_stack.REWARD_STACK),
          lifted_steps=int((rewards >= jaco_stack.REWARD_LIFT).sum())))
    results[name] = dict(
        sigma=sigma, episodes=len(rows),
        reach=float(np.mean([r['reached'] for r in rows])),
        lift=float(np.mean([r['lifted'] for r in rows])),
        stack=float(np.mean([r['stacked'] for r in rows])),
        mean_return=float(np.mean([r['return_'] for r in rows])),
        mean_lifted_steps=float(np.mean([r['lifted_steps'] for r in rows])),
        seconds=round(time.time() - start, 1))
    print(name, {k: v for k, v in results[name].items() if k != 'sigma'},
          flush=True)
  output = dict(workdir=_WORKDIR.value, task_learner_steps=steps,
                seed=_SEED.value, results=results)
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w') as f:
      json.dump(output, f, indent=1)


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
