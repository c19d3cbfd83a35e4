"""A run's task policy handed the tracker's reached and lifted states.

Not project code: a probe kept beside the results it writes. The
tracker-fed bound's task policy lifts from up to 6 of the 10 held-out
starts but has stacked from none (docs/fidelity.md, session 32). Where
does it stop? `launch/diagnose.py --learner=task` hands the task policy
the states the run's learned imitation policy reaches; a tracker-fed run's
imitation policy is not what fed it, and it rarely lifts. This probe hands
over from the feeder's own states instead: the joint tracker (no noise, no
early termination) follows each demo of `--demos` from its first frame,
and the run's task policy (target networks, greedy, as the evaluator runs
it) takes over at the rollout's first reached and first lifted state for
`--steps` actions (`task_diagnostics.handover_probe`: holds, lifts,
stacks, its task return against the tracker's over the same steps). It
also scores the cloning fit stage by stage: at every state of the
tracker's rollouts, the task policy's action against the tracker's (what
greedy labels clone), mean absolute difference over the arm's 6 joints and
the 3 fingers, and both policies' mean finger command (positive closes the
hand), grouped by the task reward the tracker's action earned.
Minutes per workdir.

    MUJOCO_GL=egl python docs/results/task_feeder/handover_probe.py \\
        --workdir=/tmp/screens/task_levers_60min_s32/armFD200NVG_seed0 \\
        --demos=data/demos_validation_features --steps=200 \\
        --output=docs/results/task_feeder/handover_FD200NVG_seed0.json
"""
import json
import os
import time

from absl import app
from absl import flags
from acme import specs
import numpy as np

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import diagnostics
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic import task_diagnostics
from acme_metamimic.environments import jaco_stack

_WORKDIR = flags.DEFINE_string('workdir', None, 'A run_local workdir.')
_DEMOS = flags.DEFINE_multi_string(
    'demos', ['data/demos_validation_features'],
    'Demo sets the tracker follows (repeatable).')
_NUM_DEMOS = flags.DEFINE_integer('num_demos', None,
                                  'First N demos of each set.')
_STEPS = flags.DEFINE_integer('steps', 200,
                              "The task policy's actions per handover.")
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the environment.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON written here.')

_STAGES = (('none', 0.), ('reached', jaco_stack.REWARD_REACH),
           ('lifted', jaco_stack.REWARD_LIFT),
           ('stacked', jaco_stack.REWARD_STACK))


def cloning_fit(paths, task_policy):
  """The task policy's action against the tracker's, by reward stage."""
  rows = {name: [] for name, _ in _STAGES}
  for path in paths:
    for observation, action, reward in zip(path.observations, path.actions,
                                           path.task_rewards):
      name = min(_STAGES, key=lambda stage: abs(stage[1] - reward))[0]
      rows[name].append((task_policy(observation), action))
  fit = {}
  for name, pairs in rows.items():
    if not pairs:
      continue
    own, tracker = (np.stack(x) for x in zip(*pairs))
    error = np.abs(own - tracker)
    fit[name] = dict(
        states=len(pairs),
        arm_error=float(error[:, diagnostics.ARM].mean()),
        finger_error=float(error[:, diagnostics.FINGERS].mean()),
        policy_finger_command=float(own[:, diagnostics.FINGERS].mean()),
        tracker_finger_command=float(tracker[:, diagnostics.FINGERS].mean()))
  return fit


def main(_):
  start = time.time()
  workdir = os.path.abspath(_WORKDIR.value)
  config = config_lib.features_config(
      **evaluation.network_overrides(workdir))
  environment = presets.make_environment('features', seed=_SEED.value)
  spec = specs.make_environment_spec(environment)
  _, networks = evaluation.build_networks('features', config, spec)
  steps = evaluation.restore_policy_networks(networks, workdir,
                                             evaluation.TASK_LEARNER)
  task_policy = evaluation.make_greedy_policy(networks, spec)
  builder = builder_lib.MetaMimicBuilder(config)
  results = {}
  for path in _DEMOS.value:
    demos = presets.load_demonstrations('features', os.path.abspath(path),
                                        max_episodes=_NUM_DEMOS.value)
    follow = builder.make_imitation_environment(
        environment, demos, seed=_SEED.value, curriculum=False,
        early_termination='none')
    tracker = diagnostics.joint_tracker_policy(follow)
    paths = [task_diagnostics.follow_with_states(follow, tracker, demo)
             for demo in demos]
    rewards = [p.task_rewards for p in paths]
    tracker_summary = dict(
        demos=len(paths),
        mean_task_return=float(np.mean([r.sum() for r in rewards])),
        lift=float(np.mean([r.max() >= jaco_stack.REWARD_LIFT
                            for r in rewards])),
        stack=float(np.mean([r.max() >= jaco_stack.REWARD_STACK
                             for r in rewards])))
    handover = task_diagnostics.handover_probe(environment, paths,
                                               task_policy, _STEPS.value)
    results[path] = dict(tracker=tracker_summary, handover=handover,
                         cloning_fit=cloning_fit(paths, task_policy))
    print(path, json.dumps(results[path]), flush=True)
  output = dict(workdir=workdir, task_learner_steps=steps,
                seed=_SEED.value, steps=_STEPS.value, results=results,
                seconds=round(time.time() - start, 1))
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w') as f:
      json.dump(output, f, indent=1)


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
