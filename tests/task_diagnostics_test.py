"""The task-learner probes on known critics, real MuJoCo and a checkpoint.

The value probe is checked against critics whose answers are known, the
handover probe against the demonstrator's own actions replayed from its
exact states (which must earn exactly the demo's task reward), and
`diagnose_task` end to end on a workdir holding both learners' checkpoints.
"""

import os

from acme import specs
import numpy as np
import pytest
import tensorflow as tf

from acme_metamimic import config as config_lib
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic import task_diagnostics
from acme_metamimic.demonstrations import dataset
from acme_metamimic.environments import jaco_stack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET = 'features'
TRAIN_DEMOS = os.path.join(ROOT, 'data', 'demos_train_features')


def test_returns_to_go_are_discounted_and_truncated():
  np.testing.assert_allclose(
      task_diagnostics.returns_to_go(np.array([0., 1., 0., 1.]), 0.5),
      [0.625, 1.25, 0.5, 1.])


def _path(demo_id, rewards, actions):
  return task_diagnostics.ImitationPath(
      demo_id=demo_id,
      observations=[dict(demo=demo_id, t=t) for t in range(len(rewards))],
      actions=np.asarray(actions, np.float32),
      task_rewards=np.asarray(rewards, np.float64),
      physics_states=np.zeros((len(rewards), 1)))


def test_value_probe_reads_known_critics():
  discount = 0.9
  paths = [_path(0, [0., 0., 0.125, 0.5], np.full((4, 9), 0.5)),
           _path(1, [0., 0., 0., 0.], np.full((4, 9), -0.5))]
  lookup = {(p.demo_id, t): (g, p.actions[t]) for p in paths
            for t, g in enumerate(task_diagnostics.returns_to_go(
                p.task_rewards, discount))}

  def oracle(observation, action):
    # The true return-to-go, and a bonus for the action the rollout took.
    value, taken = lookup[observation['demo'], observation['t']]
    return value + float(np.array_equal(action, taken))

  zero_policy = lambda observation: np.zeros(9, np.float32)
  value = task_diagnostics.value_probe(paths, oracle, zero_policy, discount,
                                       stride=1)
  assert value['num_states'] == 8
  # Every state of the first path has a positive return-to-go.
  assert value['rewarding_states'] == pytest.approx(4 / 8)
  assert value['q_prefers_imitation_action'] == 1.
  assert value['action_distance'] == pytest.approx(0.5 * 3.)  # |0.5| * 9**.5
  assert value['q_vs_return'] > 0.8
  negated = task_diagnostics.value_probe(
      paths, lambda o, a: -oracle(o, a), zero_policy, discount, stride=1)
  assert negated['q_prefers_imitation_action'] == 0.
  assert negated['q_vs_return'] == pytest.approx(-value['q_vs_return'])
  assert task_diagnostics.value_probe(
      paths, oracle, zero_policy, discount, stride=2)['num_states'] == 4


def test_handover_replaying_the_demonstrator_earns_the_demos_reward():
  environment = presets.make_environment(PRESET, seed=0)
  # The demonstrator's actions: a test's replay only, as the baselines
  # read them.
  demo = [d for d in dataset.load_demonstrations(
      TRAIN_DEMOS, specs.make_environment_spec(environment), PRESET,
      state_size=environment.get_state().shape[0], max_episodes=3,
      include_actions=True).episodes if d.success][0]
  path = task_diagnostics.ImitationPath(
      demo_id=demo.episode_id,
      observations=[demo.frame(t) for t in range(len(demo) - 1)],
      actions=demo.actions, task_rewards=demo.rewards,
      physics_states=demo.physics_states[:-1])
  steps = 60
  # The demonstrator's actions from each handover state, in the order the
  # probe hands over (stage by stage, path by path).
  starts = {stage: int(np.flatnonzero(demo.rewards >= threshold)[0]) + 1
            for stage, threshold in task_diagnostics.STAGES.items()}
  queue = [a for stage in task_diagnostics.STAGES
           for a in demo.actions[starts[stage]:starts[stage] + steps]]
  replay = lambda observation: queue.pop(0)
  handover = task_diagnostics.handover_probe(environment, [path], replay,
                                             steps)
  assert not queue
  assert handover['steps'] == steps
  for stage, start in starts.items():
    part = handover[stage]
    expected = demo.rewards[start:start + steps]
    assert part['handovers'] == 1.
    assert part['task_return'] == pytest.approx(expected.sum())
    assert part['imitation_task_return'] == pytest.approx(expected.sum())
    assert part['lifts'] == float(expected.max() >= jaco_stack.REWARD_LIFT)
    assert part['holds'] == float(
        expected[-1] >= task_diagnostics.STAGES[stage])


def test_task_policy_fit_learns_a_function_of_the_observation():
  config = config_lib.features_config()
  environment = presets.make_environment(PRESET, seed=0)
  _, networks = evaluation.build_networks(
      PRESET, config, specs.make_environment_spec(environment))
  demos = presets.load_demonstrations(PRESET, TRAIN_DEMOS, max_episodes=2)
  observations = {key: np.concatenate([d.observations[key][:-1]
                                       for d in demos])
                  for key in demos[0].observations}
  # A target the policy's tanh output can reach: the arm joints' sines.
  actions = np.sin(observations['body'][:, :9]).astype(np.float32) * 0.8
  fit = task_diagnostics.fit_task_policy_to_imitation(
      networks, observations, actions, steps=600, learning_rate=1e-3,
      batch_size=64, seed=0)
  assert fit['transitions'] == len(actions)
  assert fit['last_loss'] < 0.2 * fit['first_loss'], fit


def test_diagnose_task_restores_both_learners_and_probes(tmp_path):
  config = config_lib.features_config()
  environment = presets.make_environment(PRESET, seed=0)
  spec = specs.make_environment_spec(environment)
  imitation_networks, task_networks = evaluation.build_networks(
      PRESET, config, spec)
  for seed, (label, networks) in enumerate((
      (evaluation.IMITATION_LEARNER, imitation_networks),
      (evaluation.TASK_LEARNER, task_networks))):
    # As CheckpointingRunner(key='learner') saves D4PGLearner.state.
    checkpoint = tf.train.Checkpoint(learner={
        'target_policy': networks.policy_network,
        'target_observation': networks.observation_network,
        'target_critic': networks.critic_network,
        'num_steps': tf.Variable(100 * (seed + 1), dtype=tf.int32)})
    tf.train.CheckpointManager(
        checkpoint, evaluation.checkpoint_directory(str(tmp_path), label),
        max_to_keep=1).save()
  demos = presets.load_demonstrations(PRESET, TRAIN_DEMOS, max_episodes=1)
  result = task_diagnostics.diagnose_task(
      str(tmp_path), PRESET, demos, config, stride=50, handover_steps=3,
      fit_steps=5, fit_episodes_per_demo=1, validation_demos=demos,
      fit_config=config_lib.features_config(observation_normalization=True))
  fitted = result['fitted_task_policy']
  assert fitted['fit']['transitions'] == len(demos[0]) - 1
  assert fitted['network_config']['observation_normalization'] is True
  for split in ('train', 'validation'):
    assert fitted[split]['num_episodes'] == 1.
  assert result['source']['learner_steps'] == {
      evaluation.IMITATION_LEARNER: 100, evaluation.TASK_LEARNER: 200}
  assert result['imitation']['num_rollouts'] == 1.
  assert result['value']['num_states'] == np.ceil(
      (len(demos[0]) - 1) / 50)
  assert np.isfinite(result['value']['q_imitation_action'])
  assert set(result['handover']) == {*task_diagnostics.STAGES, 'steps'}
  with pytest.raises(FileNotFoundError):
    task_diagnostics.diagnose_task(str(tmp_path / 'none'), PRESET, demos,
                                   config)
