"""Evaluates MetaMimic policies: one-shot imitation and task policy vs demos.

    python launch/evaluate.py --workdir=workdir/metamimic \
        --demos=data/demos_train_features \
        --validation_demos=data/demos_validation_features \
        --output=workdir/metamimic/evaluation.json

Policies come from the learner checkpoints of `launch/run_local.py`
(<workdir>/checkpoints/{imitation_learner,task_learner}): the target policy
and observation networks, which Acme's D4PG learner gives its actors and
evaluators, so that these numbers and the training curves are of the same
policy (`--networks=online` reads the online ones, which lead them by fewer
than `target_update_period` SGD steps). Without --workdir, or with
--untrained, freshly initialised (untrained) networks are evaluated, which
gives the chance level of every metric. `--policy=joint_tracker` follows the
demos with the hand-written joint tracker instead
(`diagnostics.joint_tracker_policy`, the features preset's diagnostic
ceiling), by the same protocol; it has no task policy, so that part is
skipped.

By default every held-out demo and every training demo the run trained on
(the first --max_train_demos) is followed once; --num_episodes keeps the first
N of each split.

Per split (held-out = --validation_demos, train = --demos) and per demo: start
at the demo's first physics state and follow it once with the greedy imitation
policy (early termination --early_termination, default 'none': the whole demo
is followed). Then the greedy task policy runs from the same start for the
environment's episode length. Prints a Markdown table and writes all metrics
(and per-episode numbers) as JSON to --output.
"""

import json
import os
import time

from absl import app
from absl import flags
from absl import logging
from acme import specs
import numpy as np

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import diagnostics
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic.demonstrations import dataset

_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'run_local workdir with learner checkpoints; omit to '
    'evaluate untrained networks.')
_POLICY = flags.DEFINE_enum(
    'policy', 'learned', ['learned', 'joint_tracker'],
    'The imitation policy: the learned one (checkpoint or untrained), or the '
    'hand-written joint tracker (diagnostics.py), whose source kind is '
    "'joint_tracker'.")
_UNTRAINED = flags.DEFINE_bool('untrained', False,
                               'Ignore checkpoints: evaluate fresh networks.')
_DEMOS = flags.DEFINE_string('demos', 'data/demos_train_features',
                             'Training demo set (style A).')
_VALIDATION_DEMOS = flags.DEFINE_string('validation_demos',
                                        'data/demos_validation_features',
                                        'Held-out demo set (style B).')
_PRESET = flags.DEFINE_string('preset', 'features',
                              f'One of {sorted(presets.PRESETS)}.')
_NUM_EPISODES = flags.DEFINE_integer(
    'num_episodes', None, 'Demos per split: the first N of each set '
    '(default: every demo; of --demos, the first --max_train_demos).')
_MAX_TRAIN_DEMOS = flags.DEFINE_integer(
    'max_train_demos', None, 'The run trained on the first this many demos '
    'of --demos (run_local\'s flag): only those are its training demos.')
_NETWORKS = flags.DEFINE_enum(
    'networks', 'target', list(evaluation.CHECKPOINT_NETWORKS),
    'Which of a checkpoint\'s policies to evaluate: the target networks the '
    'actors and evaluators act with, or the online ones.')
_EARLY_TERMINATION = flags.DEFINE_enum(
    'early_termination', 'none', list(config_lib.EARLY_TERMINATION_MODES),
    'Early termination while following a demo during evaluation.')
_TASK_MAX_STEPS = flags.DEFINE_integer(
    'task_max_steps', None, 'Cap on task policy steps (default: the '
    "environment's episode length).")
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of network initialisation.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON file for the metrics.')


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.random.set_seed(_SEED.value)
  start = time.time()
  preset = _PRESET.value
  # A run's overrides of network-shaping fields (e.g. goal_delta_scale) are
  # needed to restore its policies; its reward and termination overrides are
  # not applied: every run is measured with the preset's eq. 2.
  overrides = (evaluation.network_overrides(os.path.abspath(_WORKDIR.value))
               if _WORKDIR.value and not _UNTRAINED.value else {})
  config = presets.make_config(
      preset, seed=_SEED.value, early_termination=_EARLY_TERMINATION.value,
      **overrides)
  builder = builder_lib.MetaMimicBuilder(config)
  environment = presets.make_environment(preset, seed=_SEED.value)
  environment_spec = specs.make_environment_spec(environment)
  imitation_networks, task_networks = evaluation.build_networks(
      preset, config, environment_spec)

  source = dict(kind='untrained', learner_steps={})
  if _POLICY.value == 'joint_tracker':
    source = dict(kind='joint_tracker', learner_steps={},
                  gain=diagnostics.TRACKER_GAIN)
  elif _WORKDIR.value and not _UNTRAINED.value:
    workdir = os.path.abspath(_WORKDIR.value)
    steps = {}
    for label, networks in ((evaluation.IMITATION_LEARNER, imitation_networks),
                            (evaluation.TASK_LEARNER, task_networks)):
      try:
        steps[label] = evaluation.restore_policy_networks(
            networks, workdir, label, networks_kind=_NETWORKS.value)
      except FileNotFoundError as e:
        # Baselines without imitation (D4PG, D4PGfD) have no imitation learner.
        print(f'[evaluate] skipping {label}: {e}', flush=True)
    if not steps:
      raise app.UsageError(f'No learner checkpoints under {workdir}/checkpoints.')
    source = dict(kind='checkpoint', workdir=workdir, learner_steps=steps,
                  networks=_NETWORKS.value)
  print(f'[evaluate] policies: {source}', flush=True)

  imitation_spec = builder_lib.imitation.imitation_environment_spec(
      environment_spec)
  imitation_policy = evaluation.make_greedy_policy(imitation_networks,
                                                   imitation_spec)
  if source['kind'] == 'joint_tracker':
    imitation_policy = diagnostics.joint_tracker_policy(environment)
  task_policy = evaluation.make_greedy_policy(task_networks, environment_spec)

  evaluate_imitation = source['kind'] != 'checkpoint' or (
      evaluation.IMITATION_LEARNER in source['learner_steps'])
  evaluate_task = source['kind'] == 'untrained' or (
      evaluation.TASK_LEARNER in source['learner_steps'])
  results = dict(source=source, preset=preset, network_overrides=overrides,
                 early_termination=_EARLY_TERMINATION.value, metrics={},
                 episodes={}, demos={})
  split_metrics = {}
  for split, path, trained in (('validation', _VALIDATION_DEMOS.value, None),
                               ('train', _DEMOS.value,
                                _MAX_TRAIN_DEMOS.value)):
    counts = [n for n in (_NUM_EPISODES.value, trained) if n is not None]
    demos = presets.load_demonstrations(
        preset, path, max_episodes=min(counts) if counts else None)
    episodes = [dict(demo_id=d.episode_id, demo_steps=len(d) - 1,
                     demo_task_return=float(np.sum(d.rewards)),
                     demo_success=bool(d.success),
                     demo_frames_to_stack=evaluation.frames_to_stack(d.rewards))
                for d in demos]
    # Which set it was: demo sets recorded with different seeds once hid
    # behind the same path (run_local --demo_seed).
    metadata = dataset.read_metadata(path)
    results['demos'][split] = dict(
        path=os.path.abspath(path),
        evaluated=len(demos),
        **{key: metadata.get(key) for key in ('style', 'seed', 'count')})
    if evaluate_imitation:
      imitation, rollouts = evaluation.evaluate_imitation(
          environment, imitation_policy, builder, demos)
      split_metrics[split] = imitation
      results['metrics'][f'imitation_{split}'] = imitation
      for episode, rollout in zip(episodes, rollouts):
        episode.update(
            imitation_steps=len(rollout),
            imitation_return=float(np.sum(rollout.imitation_rewards)),
            imitation_task_return=float(np.sum(rollout.task_rewards)),
            imitation_success=bool(rollout.success),
            imitation_early_terminated=bool(rollout.early_terminated))
    if evaluate_task:
      task, rollouts = evaluation.evaluate_task(
          environment, task_policy, demos, _TASK_MAX_STEPS.value)
      results['metrics'][f'task_policy_{split}'] = task
      for episode, rollout in zip(episodes, rollouts):
        episode.update(
            task_policy_return=float(np.sum(rollout.task_rewards)),
            task_policy_success=bool(rollout.success),
            task_policy_frames_to_stack=evaluation.frames_to_stack(
                rollout.task_rewards))
    results['episodes'][split] = episodes
    print(f'[evaluate] {split}: {len(demos)} demos of {path} done '
          f'({time.time() - start:.0f}s)', flush=True)
  if len(split_metrics) == 2:
    results['metrics']['generalization_gap'] = evaluation.generalization_gap(
        split_metrics['train'], split_metrics['validation'])
  results['seconds'] = round(time.time() - start, 1)

  print('\n'.join(evaluation.summarize(results['metrics'])), flush=True)
  if _OUTPUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    with open(_OUTPUT.value, 'w') as f:
      json.dump(results, f, indent=2, sort_keys=True, default=float)
    print(f'[evaluate] wrote {_OUTPUT.value}', flush=True)


if __name__ == '__main__':
  app.run(main)
