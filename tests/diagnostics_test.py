"""The joint tracker and the critic probes on real MuJoCo and committed demos.

The probes are checked against critics whose answers are known: an oracle
whose Q is the true one-step eq. 2 reward (it finds the demo frame from the
observation alone and steps its own simulator), a random one and the
oracle's negation. launch/diagnose.py runs end to end on untrained networks
with tiny sizes.
"""

import json
import os
import subprocess
import sys

from acme import specs
import numpy as np
import pytest
import tensorflow as tf

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import diagnostics
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic.environments import imitation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET = 'features'
VALIDATION_DEMOS = os.path.join(ROOT, 'data', 'demos_validation_features')
TRAIN_DEMOS = os.path.join(ROOT, 'data', 'demos_train_features')
# jaco_stack's documented actuator ranges (rad/s): large arm joints, wrist
# joints, fingers.
ARM_RANGES = np.array([0.628] * 3 + [0.838] * 3)
FINGER_RANGE = 5.


@pytest.fixture(scope='module')
def setup():
  """The held-out demos 0 and 1, eq. 2 and two imitation environments.

  Both follow every demo whole (no early termination); the second, over its
  own simulator, is the oracle's.
  """
  config = config_lib.features_config()
  builder = builder_lib.MetaMimicBuilder(config)
  demos = presets.load_demonstrations(PRESET, VALIDATION_DEMOS,
                                      max_episodes=2)
  environments = [
      builder.make_imitation_environment(
          presets.make_environment(PRESET, seed=0), demos, seed=0,
          curriculum=False, early_termination='none') for _ in range(2)]
  return dict(demos=demos, reward=builder.make_imitation_reward(),
              environment=environments[0], oracle_environment=environments[1],
              config=config)


def _zero_policy(observation):
  del observation
  return np.zeros(9, np.float32)


def _locate(demos, observation):
  """(demo, t) whose frames t and t + 1 are the observation and its goal."""
  best, where = np.inf, None
  for demo in demos:
    body = demo.observations['body']
    own = observation[imitation.OBSERVATION]['body']
    goal = observation[imitation.GOAL]['body']
    distance = (np.sum(np.square(body[:-1] - own), axis=1) +
                np.sum(np.square(body[1:] - goal), axis=1))
    t = int(np.argmin(distance))
    if distance[t] < best:
      best, where = distance[t], (demo, t)
  return where


def _oracle(setup):
  """A 'critic' whose Q is the true one-step eq. 2 reward of the action."""
  environment = setup['oracle_environment']

  def critic(observation, action):
    demo, t = _locate(setup['demos'], observation)
    environment.reset_to_demo(demo, t)
    timestep = environment.step(action)
    return setup['reward'](timestep.observation[imitation.OBSERVATION],
                           demo.frame(t + 1))

  return critic


def _states(setup, num_states, horizon=0):
  return diagnostics.sample_demo_states(setup['demos'], num_states, horizon,
                                        np.random.default_rng(1))


def test_tracker_follows_a_held_out_demo_far_better_than_standing_still(
    setup):
  demo = setup['demos'][0].prefix(60)  # The reach, toward the brick.
  per_step = {}
  for name, policy in (
      ('tracker', diagnostics.joint_tracker_policy(setup['environment'])),
      ('zero', _zero_policy)):
    rollout = evaluation.follow_demo(setup['environment'], policy, demo,
                                     setup['reward'])
    assert len(rollout) == 60
    per_step[name] = float(np.mean(rollout.imitation_rewards))
  assert per_step['tracker'] > per_step['zero'] + 5., per_step


def test_ranking_is_perfect_for_the_oracle_and_chance_for_a_random_critic(
    setup):
  tracker = diagnostics.joint_tracker_policy(setup['environment'])
  rng = np.random.default_rng(0)
  critics = dict(oracle=_oracle(setup),
                 random=lambda observation, action: float(rng.uniform()))
  results = {}
  for name, critic in critics.items():
    scores = diagnostics.score_candidates(
        setup['environment'], _states(setup, 4, horizon=2), critic,
        _zero_policy, tracker, setup['reward'], num_candidates=6, horizon=2,
        discount=0.99, rng=np.random.default_rng(2))
    assert [s.q.shape for s in scores] == [(8,)] * 4
    results[name] = (diagnostics.critic_ranking(scores),
                     diagnostics.policy_vs_tracker(scores))
  ranking, versus = results['oracle']
  assert ranking['q_vs_reward'] == pytest.approx(1.)
  assert ranking['ranked_states'] == 4
  # The oracle prefers exactly what the reward prefers.
  assert versus['q_prefers_policy'] == versus['reward_prefers_policy']
  assert versus['policy_q'] == pytest.approx(versus['policy_reward'])
  ranking, _ = results['random']
  assert abs(ranking['q_vs_reward']) < 0.6, ranking


def test_critic_support_says_where_q_sits_between_vmin_and_vmax():
  # Two states: the policy's Q at the top atom with no spread over the
  # candidates (a saturated critic), then mid-support with spread 20.
  scores = [diagnostics.CandidateScores(np.asarray(q, float), np.zeros(3),
                                        np.zeros(3))
            for q in ([200., 200., 200.], [100., 90., 110.])]
  support = diagnostics.critic_support(scores, vmin=0., vmax=200.)
  assert support == dict(vmax=200., policy_q_fraction=0.75,
                         policy_q_near_vmax=0.5, q_spread_fraction=0.05)


def test_gradient_cosine_is_one_for_the_oracle_gradient(setup):
  oracle = _oracle(setup)

  def oracle_gradient(observation, action):
    # A smaller step than the probe's: the same gradient, differently taken.
    return diagnostics.finite_difference_gradient(
        lambda a: oracle(observation, a), action, epsilon=0.02)

  tracker = diagnostics.joint_tracker_policy(setup['environment'])
  cosines = {}
  for name, gradient in (
      ('oracle', oracle_gradient),
      ('negated', lambda o, a: -oracle_gradient(o, a))):
    result = diagnostics.gradient_cosine(
        setup['environment'], _states(setup, 3), gradient, tracker,
        setup['reward'])
    assert result['reward_gradient_norm'] > 0
    # At horizon 0 the return is the one-step reward: the reference is 1.
    assert result['reward_vs_return_cosine'] > 0.999, result
    assert result['return_cosine'] == pytest.approx(result['cosine'])
    cosines[name] = result['cosine']
  assert cosines['oracle'] > 0.9, cosines
  assert cosines['negated'] < -0.9, cosines


def test_finite_difference_gradient_of_several_outputs_at_once():
  # One gradient per output, from the same perturbed actions; steps that
  # would leave [-1, 1] are shortened (the second dimension sits at 1).
  def outputs(action):
    return np.asarray([np.sum(action ** 2), 3. * action[0]])

  action = np.asarray([0.5, 1., -0.25], np.float32)
  gradient = diagnostics.finite_difference_gradient(outputs, action, 0.01)
  assert gradient.shape == (2, 3)
  np.testing.assert_allclose(gradient[0], [1., 1.99, -0.5], atol=1e-4)
  np.testing.assert_allclose(gradient[1], [3., 0., 0.], atol=1e-4)


@pytest.mark.parametrize('gain', [0.5, 0.25])
def test_tracker_goal_sensitivity_is_its_gain_per_control_step(setup, gain):
  environment = setup['environment']
  observations = [environment.reset_to_demo(*state).observation
                  for state in _states(setup, 3)]
  sensitivity = diagnostics.goal_sensitivity(
      observations, diagnostics.joint_tracker_policy(environment, gain))
  # d action / d goal: gain / 0.05 s in rad/s per rad, over the range.
  assert sensitivity['arm_own_joint'] == pytest.approx(
      np.mean(gain / 0.05 / ARM_RANGES), rel=1e-3)
  assert sensitivity['fingers_own_joint'] == pytest.approx(
      gain / 0.05 / FINGER_RANGE, rel=1e-3)
  assert sensitivity['arm_other_joints'] == 0.
  assert sensitivity['fingers_other_joints'] == 0.


def test_restore_critic_network_reads_the_kind_asked(setup, tmp_path):
  environment_spec = specs.make_environment_spec(
      setup['environment'].environment)
  config = setup['config']
  online, target, fresh = (
      evaluation.build_networks(PRESET, config, environment_spec)[0]
      for _ in range(3))
  for seed, networks in enumerate((online, target)):
    for variable in networks.critic_network.variables:
      variable.assign(tf.random.normal(variable.shape, seed=seed))
  # As CheckpointingRunner(key='learner') saves D4PGLearner.state.
  checkpoint = tf.train.Checkpoint(learner={
      'critic': online.critic_network, 'policy': online.policy_network,
      'target_critic': target.critic_network,
      'target_policy': target.policy_network})
  directory = evaluation.checkpoint_directory(str(tmp_path),
                                              evaluation.IMITATION_LEARNER)
  tf.train.CheckpointManager(checkpoint, directory, max_to_keep=1).save()
  for kind, expected in (('target', target), ('online', online)):
    diagnostics.restore_critic_network(
        fresh, str(tmp_path), evaluation.IMITATION_LEARNER, kind)
    for a, b in zip(expected.critic_network.variables,
                    fresh.critic_network.variables):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
  with pytest.raises(FileNotFoundError):
    diagnostics.restore_critic_network(fresh, str(tmp_path),
                                       evaluation.TASK_LEARNER)


EXPECTED = dict(
    critic_ranking={'q_vs_reward', 'q_vs_return', 'reward_vs_return',
                    'num_states', 'ranked_states'},
    policy_vs_tracker={'q_prefers_policy', 'reward_prefers_policy',
                       'return_prefers_policy', 'policy_reward',
                       'tracker_reward', 'policy_q', 'tracker_q'},
    critic_support={'vmax', 'policy_q_fraction', 'policy_q_near_vmax',
                    'q_spread_fraction'},
    gradient_cosine={'cosine', 'cosine_median', 'return_cosine',
                     'reward_vs_return_cosine', 'critic_gradient_norm',
                     'reward_gradient_norm', 'return_gradient_norm',
                     'horizon', 'num_states'},
    goal_sensitivity={'arm_own_joint', 'fingers_own_joint',
                      'arm_other_joints', 'fingers_other_joints'},
    exploration={'mean_length', 'median_length', 'early_termination_rate',
                 'imitation_reward_per_step', 'num_episodes'},
)
PER_POLICY = ('goal_sensitivity', 'exploration')


def test_diagnose_script_writes_every_number_for_untrained_networks(
    tmp_path):
  output = tmp_path / 'diagnostics.json'
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'diagnose.py'),
       '--num_demos=1', '--num_states=2', '--num_candidates=3', '--horizon=2',
       '--exploration_episodes=1', f'--output={output}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
  assert 'cosine(dQ/da' in result.stdout
  with open(output) as f:
    written = json.load(f)
  assert set(written) == set(EXPECTED) | {
      'settings', 'source', 'seconds', 'network_overrides', 'demos'}
  assert written['source'] == dict(kind='untrained')
  assert written['settings']['num_states'] == 2
  assert written['settings']['demo_curriculum'] is True  # As main.sh trains.
  assert len(written['settings']['states']) == 2
  assert set(written['seconds']) == {*EXPECTED, 'total'} - {
      'policy_vs_tracker', 'critic_support'}
  for probe, keys in EXPECTED.items():
    parts = written[probe]
    if probe in PER_POLICY:
      assert set(parts) == {'policy', 'tracker'}
    else:
      parts = dict(learned=parts)
    for part in parts.values():
      assert set(part) == keys, probe
      assert all(np.isfinite(value) for value in part.values()), (probe, part)


def _fit_setup(config, curriculum=None):
  """(environment, spec, fresh networks, builder, 2 training demos, their
  imitation environment) for the fit probes."""
  environment = presets.make_environment(PRESET, seed=0)
  spec = specs.make_environment_spec(environment)
  networks, _ = evaluation.build_networks(PRESET, config, spec)
  builder = builder_lib.MetaMimicBuilder(config)
  demos = presets.load_demonstrations(PRESET, TRAIN_DEMOS, max_episodes=2)
  imitation_environment = builder.make_imitation_environment(
      environment, demos, seed=0, curriculum=curriculum)
  return environment, spec, networks, builder, demos, imitation_environment


def test_critic_fitted_to_the_one_step_reward_learns_it():
  # diagnose.py --fit_critic_steps: the learner's categorical loss with
  # discount 0 falls, and the fitted critic ranks actions at training states
  # like the reward far better than the fresh one did.
  config = config_lib.features_config(early_termination='none')
  environment, spec, networks, builder, demos, imitation_environment = (
      _fit_setup(config, curriculum=False))
  tracker = diagnostics.joint_tracker_policy(environment)
  rng = np.random.default_rng(0)
  transitions = diagnostics.collect_one_step_transitions(
      imitation_environment, demos, tracker, builder.make_imitation_reward(),
      400, rng)
  observations, actions, rewards = transitions
  assert actions.shape == (400, 9) and rewards.shape == (400,)
  assert observations['goal']['body'].shape == (400, 18)
  critic, _ = diagnostics.make_network_critic(networks)

  def correlation():
    q = [critic(tf.nest.map_structure(lambda x: x[i], observations),
                actions[i]) for i in range(100)]
    return diagnostics.spearman(np.asarray(q), rewards[:100])

  before = correlation()
  fit = diagnostics.fit_critic_to_one_step_reward(
      networks, transitions, steps=400, learning_rate=1e-3, batch_size=64,
      seed=0)
  assert fit['last_loss'] < 0.8 * fit['first_loss'], fit
  assert correlation() > max(before, 0.) + 0.3, (before, correlation())


def test_policy_fitted_by_inverse_dynamics_predicts_the_action_taken():
  # diagnose.py --fit_inverse_dynamics_steps: the transitions are the noisy
  # policy's own training episodes, o_{t+1} the next step's observation, and
  # the policy head fitted to them (goal deltas with the skip, so that the
  # head sees g - o without a trained torso) predicts the action that
  # reached a new transition's next frame far better than the fresh policy.
  config = config_lib.features_config(
      goal_delta_scale=10., goal_delta_skip=True,
      sigma_per_dimension=(0.5,) * 6 + (0.3,) * 3)
  environment, spec, networks, _, _, imitation_environment = _fit_setup(
      config)
  policy = evaluation.make_greedy_policy(
      networks, imitation.imitation_environment_spec(spec))
  sigma = np.asarray(config.exploration_sigma())
  observations, actions, next_observations, length = (
      diagnostics.collect_exploration_transitions(
          imitation_environment, policy, sigma, 400,
          np.random.default_rng(0)))
  assert actions.shape[1:] == (9,) and len(actions) >= 400
  # Within an episode, o_{t+1} is the next transition's observation.
  follows = [np.array_equal(next_observations['body'][i],
                            observations['observation']['body'][i + 1])
             for i in range(len(actions) - 1)]
  episodes = len(actions) / length
  assert sum(follows) >= len(actions) - 1 - round(episodes), (
      sum(follows), len(actions), episodes)

  held_out = diagnostics.collect_exploration_transitions(
      imitation_environment, policy, sigma, 200, np.random.default_rng(1))

  def error():
    hindsight = {'observation': held_out[0]['observation'],
                 'goal': held_out[2]}
    predicted = networks.policy_network(
        networks.observation_network(hindsight)).numpy()
    return np.mean(np.sum((predicted - held_out[1]) ** 2, axis=-1))

  before = error()
  fit = diagnostics.fit_policy_by_inverse_dynamics(
      networks, (observations, actions, next_observations, length),
      steps=400, learning_rate=1e-3, batch_size=64, seed=0)
  assert fit['last_loss'] < 0.5 * fit['first_loss'], fit
  assert error() < 0.5 * before, (before, error())
