"""Is the task policy's grip too weak to lift? Its finger commands, scaled.

Not project code: a diagnostic kept beside the results it wrote, never a
policy. The task learner's behaviour-cloning term pulls its finger commands
to the mean of the replay's (replay_fingers.py on D200B10 seed 0 of
session 28: +0.38 for both within 4 cm of the brick, where the stored,
noisy commands average 0.68 in magnitude), and a velocity actuator pressed
against a brick grips with a force that grows with its command. If a weak
grip were what drops the brick, multiplying the greedy policy's three
finger commands (clipped to [-1, 1]) would raise the lift rate from the
same fresh starts.

    MUJOCO_GL=egl python docs/results/task_offline/grip_probe.py \\
        --workdir=/tmp/screens/task_levers_60min_s28/armD200B10_seed0 \\
        --output=docs/results/task_offline/grip_s28_D200B10_seed0.json
"""
import json

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
_EPISODES = flags.DEFINE_integer('episodes', 30, 'Fresh starts per scale.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the fresh starts.')
_SCALES = flags.DEFINE_list('scales', ['1', '2', '3'],
                            'Factors on the finger commands.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON written here.')

FINGERS = slice(6, 9)


def main(_):
  config = config_lib.features_config(
      **evaluation.network_overrides(_WORKDIR.value))
  spec = specs.make_environment_spec(
      presets.make_environment('features', seed=_SEED.value))
  _, networks = evaluation.build_networks('features', config, spec)
  steps = evaluation.restore_policy_networks(networks, _WORKDIR.value,
                                             evaluation.TASK_LEARNER)
  policy = tf.function(networks_lib.make_behavior_policy(networks, spec, 0.))
  results = {}
  for scale in map(float, _SCALES.value):
    environment = presets.make_environment('features', seed=_SEED.value)
    rows = []
    for _ in range(_EPISODES.value):
      timestep, rewards = environment.reset(), []
      while not timestep.last():
        action = tf2_utils.to_numpy_squeeze(
            policy(tf2_utils.add_batch_dim(timestep.observation)))
        action[FINGERS] = np.clip(action[FINGERS] * scale, -1., 1.)
        timestep = environment.step(action)
        rewards.append(float(timestep.reward))
      rows.append((sum(rewards), max(rewards)))
    returns, best = map(np.asarray, zip(*rows))
    results[str(scale)] = dict(
        episodes=len(rows), mean_return=float(returns.mean()),
        reach=float(np.mean(best >= jaco_stack.REWARD_REACH)),
        lift=float(np.mean(best >= jaco_stack.REWARD_LIFT)),
        stack=float(np.mean(best >= jaco_stack.REWARD_STACK)))
    print('finger scale', scale, results[str(scale)], flush=True)
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w') as f:
      json.dump(dict(workdir=_WORKDIR.value, task_learner_steps=steps,
                     seed=_SEED.value, results=results), f, indent=1)


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
