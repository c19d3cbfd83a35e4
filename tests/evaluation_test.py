"""Evaluation metrics on fixed tiny rollouts (values computed by hand), policy
restore from a learner-shaped checkpoint, and the rollout functions on a real
scripted demo replayed action by action."""

import numpy as np
import pytest
import tensorflow as tf

from acme import specs
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import evaluation
from acme_metamimic import environments
from acme_metamimic.demonstrations import dataset
from acme_metamimic.demonstrations import scripted


def _demo(rewards, success, episode_id):
  rewards = np.asarray(rewards, np.float32)
  return dataset.Demonstration(
      observations={}, physics_states=np.zeros((len(rewards) + 1, 1)),
      rewards=rewards, success=success, episode_id=episode_id)


@pytest.fixture
def demos():
  # Demo 0: 4 steps, stacks at its 4th step, return 1.625.
  # Demo 1: 3 steps, never rewarded, not a success.
  return [_demo([0., 0.125, 0.5, 1.], True, 0), _demo([0., 0., 0.], False, 1)]


def test_frames_to_stack():
  assert evaluation.frames_to_stack([0., 0.5, 1., 1.]) == 3
  assert evaluation.frames_to_stack([1.]) == 1
  assert evaluation.frames_to_stack([0., 0.5]) is None
  assert evaluation.frames_to_stack([]) is None


def test_imitation_metrics_by_hand(demos):
  rollouts = [
      # Follows all 4 steps of demo 0; imitation 10+8+6+4 = 28, task 0.75.
      evaluation.Rollout(task_rewards=np.array([0., 0.125, 0.125, 0.5]),
                         imitation_rewards=np.array([10., 8., 6., 4.]),
                         success=False, demo_id=0),
      # Early-terminated after 1 of demo 1's 3 steps: imitation 3, task 0.125.
      evaluation.Rollout(task_rewards=np.array([0.125]),
                         imitation_rewards=np.array([3.]),
                         success=False, demo_id=1, early_terminated=True),
  ]
  m = evaluation.imitation_metrics(rollouts, demos, max_imitation_reward=17.)
  assert m['num_episodes'] == 2
  assert m['imitation_return'] == pytest.approx((28. + 3.) / 2)   # 15.5
  # Per demo step: 28 / 4 = 7 and 3 / 3 = 1 -> 4.
  assert m['imitation_reward_per_step'] == pytest.approx(4.)
  assert m['imitation_reward_normalized'] == pytest.approx(4. / 17.)
  assert m['task_return'] == pytest.approx((0.75 + 0.125) / 2)    # 0.4375
  assert m['demo_task_return'] == pytest.approx(1.625 / 2)
  # Only demo 0 has a positive return: 100 * 0.75 / 1.625.
  assert m['task_return_pct_of_demo'] == pytest.approx(46.153846, rel=1e-6)
  assert m['success_rate'] == 0.
  assert m['demo_success_rate'] == 0.5
  assert m['early_termination_rate'] == 0.5
  assert m['completion'] == pytest.approx((1. + 1. / 3.) / 2)


def test_task_metrics_by_hand(demos):
  rollouts = [
      # From demo 0's start: stacks after 2 steps, runs 6 steps (longer than
      # the demo's 4). Return 5.0, over the demo's 4 steps 3.0.
      evaluation.Rollout(task_rewards=np.array([0., 1., 1., 1., 1., 1.]),
                         success=True, demo_id=0,
                         hand_to_brick=np.array([.3, .02, .01, .01, .01, .01,
                                                 .01])),
      # From demo 1's start: lifts, never stacks. Return 1.625; first 3: 0.625.
      evaluation.Rollout(task_rewards=np.array([0., 0.125, 0.5, 0.5, 0.5]),
                         success=False, demo_id=1,
                         hand_to_brick=np.array([.2, .05, .03, .03, .03,
                                                 .03])),
  ]
  m = evaluation.task_metrics(rollouts, demos)
  assert m['task_return'] == pytest.approx((5. + 1.625) / 2)
  assert m['demo_task_return'] == pytest.approx(0.8125)
  assert m['task_return_at_demo_length'] == pytest.approx((3. + 0.625) / 2)
  assert m['task_return_pct_of_demo'] == pytest.approx(300. / 1.625)
  assert m['success_rate'] == 0.5
  assert m['demo_success_rate'] == 0.5
  assert m['frames_to_stack'] == 2.          # only rollout 0 stacked
  assert m['demo_frames_to_stack'] == 4.     # only demo 0 stacked
  assert m['stacked_faster_rate'] == 0.5     # 2 < 4; rollout 1 never stacked
  assert m['reach_rate'] == 1.               # both earned task reward
  assert m['lift_rate'] == 1.                # 1.0 >= 0.5 and 0.5 >= 0.5
  assert m['closest_approach_m'] == pytest.approx((.01 + .03) / 2)
  assert 'demo_closest_approach_m' not in m  # the demos have no distances


def test_reach_rate_and_closest_approach_by_hand(demos):
  rollouts = [
      evaluation.Rollout(task_rewards=np.zeros(3), demo_id=0,
                         hand_to_brick=np.array([.3, .2, .25, .4])),
      evaluation.Rollout(task_rewards=np.array([0., .125]), demo_id=1,
                         hand_to_brick=np.array([.1, .05, .03])),
  ]
  # Distances |hand_to_target|: demo 0 [0.6, 0.8, 0.5] -> 0.5; demo 1 -> 0.1.
  demos[0].observations['hand_to_target'] = np.array(
      [[.6, 0., 0.], [0., .8, 0.], [.3, .4, 0.]])
  demos[1].observations['hand_to_target'] = np.array([[0., 0., .1]])
  m = evaluation.task_metrics(rollouts, demos)
  assert m['reach_rate'] == .5
  assert m['lift_rate'] == 0.                # reached, never lifted
  assert m['closest_approach_m'] == pytest.approx((.2 + .03) / 2)
  assert m['demo_closest_approach_m'] == pytest.approx((.5 + .1) / 2)
  rollouts[1].hand_to_brick = np.zeros(0)    # one rollout without distances
  assert 'closest_approach_m' not in evaluation.task_metrics(rollouts, demos)


def test_metrics_reject_mismatched_inputs(demos):
  with pytest.raises(ValueError):
    evaluation.imitation_metrics([], demos)
  with pytest.raises(ValueError):
    evaluation.task_metrics([], [])


def test_generalization_gap():
  gap = evaluation.generalization_gap(
      dict(imitation_return=10., success_rate=0.5, other=1.),
      dict(imitation_return=7., success_rate=0.75))
  assert gap == dict(imitation_return=3., success_rate=-0.25)


@pytest.fixture(scope='module')
def env():
  return environments.make_environment('features', seed=0)


def test_restore_policy_networks_from_learner_checkpoint(env, tmp_path):
  config = config_lib.features_config()
  spec = specs.make_environment_spec(env)
  online, _ = evaluation.build_networks('features', config, spec)
  target, _ = evaluation.build_networks('features', config, spec)
  for seed, networks in enumerate((online, target)):
    for variable in networks.policy_network.variables:
      variable.assign(tf.random.normal(variable.shape, seed=seed))
  # Same structure as CheckpointingRunner(key='learner') over
  # D4PGLearner.state (extra entries are ignored by the restore).
  checkpoint = tf.train.Checkpoint(learner={
      'policy': online.policy_network,
      'observation': online.observation_network,
      'critic': online.critic_network,
      'target_policy': target.policy_network,
      'target_observation': target.observation_network,
      'num_steps': tf.Variable(7, dtype=tf.int32)})
  directory = evaluation.checkpoint_directory(str(tmp_path), 'imitation_learner')
  tf.train.CheckpointManager(checkpoint, directory, max_to_keep=1).save()

  # By default the target networks: what the learner gives its actors and
  # evaluators (Acme's D4PG `get_variables`), so that a final evaluation
  # measures the policy the training curves measured.
  for kind, expected in (('target', target), ('online', online)):
    fresh, _ = evaluation.build_networks('features', config, spec)
    steps = evaluation.restore_policy_networks(
        fresh, str(tmp_path), 'imitation_learner',
        **({} if kind == 'target' else dict(networks_kind=kind)))
    assert steps == 7
    for a, b in zip(expected.policy_network.variables,
                    fresh.policy_network.variables):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
  with pytest.raises(FileNotFoundError):
    evaluation.restore_policy_networks(fresh, str(tmp_path), 'task_learner')
  with pytest.raises(ValueError, match='networks_kind'):
    evaluation.restore_policy_networks(fresh, str(tmp_path),
                                       'imitation_learner', 'best')


def test_replaying_demo_actions_scores_perfect_imitation(env):
  """A 'policy' replaying the demo's actions reproduces it bit for bit."""
  episode = scripted.run_episode(env, scripted.ScriptedDemonstrator('A', 3))
  # The demo is cut 5 steps after its first task reward, so that it has a
  # return for the replayed task return to match (a prefix without reward
  # would make the percentage of the demo's return undefined).
  rewarded = np.flatnonzero(episode['rewards'] > 0)
  assert rewarded.size, 'the scripted demo never earned a task reward'
  length = int(rewarded[0]) + 5
  assert length <= len(episode['actions'])
  actions = episode['actions'][:length]
  demo = dataset.Demonstration(
      observations={k: np.stack([o[k] for o in
                                 episode['observations'][:length + 1]])
                    for k in episode['observations'][0]},
      physics_states=episode['physics_states'][:length + 1],
      rewards=np.asarray(episode['rewards'][:length], np.float32),
      success=False, episode_id=0)
  assert demo.rewards.sum() > 0

  def replay():
    it = iter(actions)
    return lambda observation: next(it)

  builder = builder_lib.MetaMimicBuilder(config_lib.features_config())
  metrics, rollouts = evaluation.evaluate_imitation(env, replay(), builder,
                                                    [demo])
  assert len(rollouts[0]) == length
  assert metrics['imitation_reward_normalized'] == pytest.approx(1.)
  assert metrics['early_termination_rate'] == 0.
  np.testing.assert_allclose(rollouts[0].task_rewards, demo.rewards)

  metrics, rollouts = evaluation.evaluate_task(env, replay(), [demo],
                                               max_steps=length,
                                               keep_states=True)
  np.testing.assert_allclose(rollouts[0].task_rewards, demo.rewards)
  np.testing.assert_array_equal(rollouts[0].physics_states[0],
                                demo.physics_states[0])
  assert rollouts[0].physics_states.shape == (length + 1,
                                              demo.physics_states.shape[1])
  assert metrics['task_return'] == pytest.approx(float(demo.rewards.sum()))
  assert metrics['task_return_pct_of_demo'] == pytest.approx(100.)
  assert metrics['reach_rate'] == 1.
  # The replayed rollout passes the brick exactly as close as the demo did.
  assert metrics['closest_approach_m'] == pytest.approx(
      metrics['demo_closest_approach_m'], abs=1e-6)
  assert len(rollouts[0].hand_to_brick) == length + 1
