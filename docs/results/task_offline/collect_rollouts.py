"""A run's imitation policy, rolled out as its imitation actors act.

Not project code: a probe kept beside the results it feeds. The task table
of a MetaMimic run mixes the imitation actors' items (the imitation policy
plus fresh exploration noise at every step) with the task actors' own, and
behaviour cloning on it regresses the task policy on the noisy actions of
both. This collects the imitation side alone: the run's imitation policy
(its checkpoint's target networks, as the evaluators act) in the
imitation environment a training actor has (the run's demos, curriculum
starts, early termination, eq. 2), acting with the greedy action plus the
config's exploration noise, clipped to the action spec, and keeps, per
step, the imitation timestep, the executed (noisy) action and the greedy
one. `offline_probe.py --rollouts=FILE --rollout_labels=executed|greedy`
then writes them through the imitation actors' adder (both tables, as in
a run) with one of the two as the stored action, and trains a fresh task
learner on them: whether cloning the imitation policy's noise-free action
helps the task policy more than cloning what was executed.

    MUJOCO_GL=egl python docs/results/task_offline/collect_rollouts.py \\
        --run=/tmp/screens/task_levers_60min_s30/armD200B10NV_seed0 \\
        --demos=/tmp/demos/demos_train_features_200 --env_steps=60000 \\
        --pickle=/tmp/rollouts_s30.pkl

(Its flags are named apart from offline_probe.py's, whose `run_config` it
imports along with them.)
"""
import os
import pickle
import sys
import time

from absl import app
from absl import flags
from acme import specs
import numpy as np

from acme_metamimic import builder as builder_lib
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic.environments import imitation

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import offline_probe  # pylint: disable=g-import-not-at-top

_RUN = flags.DEFINE_string('run', None, 'A finished run_local workdir.')
_DEMOS = flags.DEFINE_string('demos', None, 'The demo set the run trained on.')
_ENV_STEPS = flags.DEFINE_integer('env_steps', 60_000,
                                  'Environment steps collected.')
_ROLLOUT_SEED = flags.DEFINE_integer('rollout_seed', 0,
                                     'Seeds demo sampling and the noise.')
_CURRICULUM = flags.DEFINE_bool(
    'curriculum', True, 'Curriculum starts, as run_local --demo_curriculum '
    '(which screen.sh and main.sh pass) gives the imitation actors.')
_PICKLE = flags.DEFINE_string('pickle', None, 'Pickle written here.')


def main(_):
  workdir = os.path.abspath(_RUN.value)
  config = offline_probe.run_config(workdir, {})
  environment = presets.make_environment('features', seed=_ROLLOUT_SEED.value)
  spec = specs.make_environment_spec(environment)
  networks, _ = evaluation.build_networks('features', config, spec)
  learner_steps = evaluation.restore_policy_networks(
      networks, workdir, evaluation.IMITATION_LEARNER)
  policy = evaluation.make_greedy_policy(
      networks, imitation.imitation_environment_spec(spec))
  builder = builder_lib.MetaMimicBuilder(config)
  demos = presets.load_demonstrations('features',
                                      os.path.abspath(_DEMOS.value))
  acting = builder.make_imitation_environment(
      environment, demos, seed=_ROLLOUT_SEED.value,
      curriculum=_CURRICULUM.value)
  sigma = np.asarray(config.exploration_sigma(), np.float32)
  low, high = spec.actions.minimum, spec.actions.maximum
  rng = np.random.default_rng(_ROLLOUT_SEED.value)

  episodes, steps, start = [], 0, time.time()
  while steps < _ENV_STEPS.value:
    timestep = acting.reset()
    episode = dict(timesteps=[timestep], executed=[], greedy=[])
    while not timestep.last():
      greedy = np.asarray(policy(timestep.observation), np.float32)
      executed = np.clip(greedy + sigma * rng.standard_normal(greedy.shape),
                         low, high).astype(np.float32)
      timestep = acting.step(executed)
      episode['timesteps'].append(timestep)
      episode['executed'].append(executed)
      episode['greedy'].append(greedy)
      steps += 1
    episodes.append(episode)
    if len(episodes) % 50 == 0:
      print(f'{steps} steps, {len(episodes)} episodes, '
            f'{time.time() - start:.0f} s', flush=True)
  task_rewards = [float(sum(t.reward for t in e['timesteps'][1:]))
                  for e in episodes]
  summary = dict(workdir=workdir, learner_steps=learner_steps,
                 steps=steps, episodes=len(episodes),
                 mean_length=steps / len(episodes),
                 mean_task_return=float(np.mean(task_rewards)),
                 rewarded_episodes=float(np.mean(np.asarray(task_rewards) > 0)),
                 seconds=round(time.time() - start))
  print(summary, flush=True)
  with open(_PICKLE.value, 'wb') as f:
    pickle.dump(dict(summary=summary, episodes=episodes), f)


if __name__ == '__main__':
  flags.mark_flags_as_required(['run', 'demos', 'pickle'])
  app.run(main)
