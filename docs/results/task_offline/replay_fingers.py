"""The finger commands in a run's task table, and its task policy's.

Not project code: a diagnostic kept beside the results it wrote. Samples
`--batches` batches of the task table of a run's replay checkpoint (the
items the task learner trains on), and prints, per kind of item, the mean
finger command stored (the actors', noise included), its mean magnitude
and the share near the top of the range, beside the mean finger command of
the run's greedy task policy (target networks) on the same observations.

    MUJOCO_GL=egl python docs/results/task_offline/replay_fingers.py \\
        --workdir=/tmp/screens/task_levers_60min_s28/armD200B10_seed0
"""
import os
import shutil
import tempfile

from absl import app
from absl import flags
from acme import specs
import numpy as np
import reverb

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import evaluation
from acme_metamimic import networks as networks_lib
from acme_metamimic import presets

_WORKDIR = flags.DEFINE_string('workdir', None, 'A finished run_local workdir.')
_BATCHES = flags.DEFINE_integer('batches', 80, 'Batches of 64 items sampled.')

FINGERS = slice(6, 9)


def main(_):
  config = config_lib.features_config(
      **evaluation.network_overrides(_WORKDIR.value))
  spec = specs.make_environment_spec(
      presets.make_environment('features', seed=0))
  builder = builder_lib.MetaMimicBuilder(config)
  copy = tempfile.mkdtemp(prefix='replay_fingers_')
  shutil.copytree(os.path.join(_WORKDIR.value, 'replay'), copy,
                  dirs_exist_ok=True)
  server = reverb.Server(
      builder.make_replay_tables(spec),
      checkpointer=reverb.checkpointers.DefaultCheckpointer(copy))
  iterator = builder.make_dataset_iterator(
      reverb.Client(f'localhost:{server.port}'))
  batches = [next(iterator).data for _ in range(_BATCHES.value)]
  observations = {key: np.concatenate([b.observation[key].numpy()
                                       for b in batches])
                  for key in batches[0].observation}
  actions = np.concatenate([b.action.numpy() for b in batches])
  rewards = np.concatenate([b.reward.numpy() for b in batches])
  _, networks = evaluation.build_networks('features', config, spec)
  evaluation.restore_policy_networks(networks, _WORKDIR.value,
                                     evaluation.TASK_LEARNER)
  policy = networks_lib.make_behavior_policy(networks, spec, 0.)
  greedy = np.concatenate([
      policy({k: v[i:i + 256] for k, v in observations.items()}).numpy()
      for i in range(0, len(actions), 256)])
  hand_to_brick = np.linalg.norm(observations['hand_to_target'], axis=1)
  kinds = {
      'all': np.ones_like(rewards, bool),
      'n-step task reward 0': rewards == 0,
      'n-step task reward in (0, 1.5)': (rewards > 0) & (rewards < 1.5),
      'n-step task reward >= 1.5 (lifted)': rewards >= 1.5,
      'hand within 4 cm of the brick': hand_to_brick < 0.04,
  }
  print(f'{_WORKDIR.value}: {len(rewards)} task-table items\n')
  print('| items | count | stored finger command: mean / mean magnitude / '
        'share > 0.95 | greedy task policy: mean |')
  print('|---|---|---|---|')
  for name, mask in kinds.items():
    stored, predicted = actions[mask, FINGERS], greedy[mask, FINGERS]
    print(f'| {name} | {mask.sum()} | {stored.mean():+.2f} / '
          f'{np.abs(stored).mean():.2f} / {(stored > 0.95).mean():.0%} | '
          f'{predicted.mean():+.2f} |')
  server.stop()
  shutil.rmtree(copy, ignore_errors=True)


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
