"""Tests for the hyperparameter dataclass."""

import re

import pytest

from acme.agents.tf.d4pg import agent as d4pg_agent
from acme_metamimic import config as config_lib


def test_paper_defaults_match_table_1():
  config = config_lib.paper_config()
  assert isinstance(config, d4pg_agent.D4PGConfig)
  assert (config.vmin, config.vmax, config.num_atoms) == (0., 100., 101)
  assert config.n_step == 5
  assert config.batch_size == 64
  assert config.target_update_period == 100
  assert config.discount == 0.99
  assert config.max_replay_size == 1_000_000
  assert config.early_termination_cutoff == 0.5
  assert (config.beta_image, config.beta_body) == (15., 2.)
  assert config.num_imitation_actors == config.num_task_actors == 256
  assert (config.imitation_sampler, config.imitation_remover) == (
      'prioritized', 'prioritized')
  assert (config.task_sampler, config.task_remover) == ('uniform', 'fifo')
  assert config.hand_to_target_threshold == 0.01
  # The imitation learner is the paper's D4PG alone: no hindsight inverse
  # dynamics, raw goals, one sigma.
  assert config.inverse_dynamics_weight == 0.
  assert config.goal_delta_scale is None and not config.goal_delta_skip
  assert config.sigma_per_dimension is None


def test_negative_inverse_dynamics_weight_is_refused():
  with pytest.raises(ValueError,
                     match='MetaMimicConfig.inverse_dynamics_weight'):
    config_lib.features_config(inverse_dynamics_weight=-1.)


def test_negative_task_behaviour_cloning_weight_is_refused():
  # On in the features preset (issue 33), the paper's loss alone in its own.
  assert config_lib.features_config().task_behaviour_cloning_weight == 10.
  assert config_lib.paper_config().task_behaviour_cloning_weight == 0.
  with pytest.raises(ValueError,
                     match='MetaMimicConfig.task_behaviour_cloning_weight'):
    config_lib.features_config(task_behaviour_cloning_weight=-1.)


def test_seed_draws_learning_rates_loguniform_in_range():
  rates = set()
  for seed in range(20):
    config = config_lib.paper_config(seed=seed)
    for rate in (config.policy_learning_rate, config.critic_learning_rate):
      assert 5e-5 <= rate <= 2e-4
      rates.add(rate)
  assert len(rates) == 40
  assert config_lib.paper_config(seed=3).policy_learning_rate == (
      config_lib.paper_config(seed=3).policy_learning_rate)


def test_explicit_learning_rate_wins():
  config = config_lib.paper_config(policy_learning_rate=1e-4)
  assert config.policy_learning_rate == 1e-4


@pytest.mark.parametrize('field,value', [
    ('early_termination', 'sometimes'),
    ('imitation_sampler', 'lifo'),
    ('task_remover', 'random'),
])
def test_bad_choices_name_the_field(field, value):
  with pytest.raises(ValueError, match=f'MetaMimicConfig.{field}'):
    config_lib.paper_config(**{field: value})


@pytest.mark.parametrize('overrides,field', [
    (dict(early_termination='hand_to_target',
          early_termination_final_cutoff=2.0,
          early_termination_schedule_steps=10), 'final_cutoff'),
    (dict(early_termination='reward', early_termination_final_cutoff=2.0),
     'schedule_steps'),
])
def test_cutoff_schedule_needs_the_reward_rule_and_a_length(overrides, field):
  with pytest.raises(ValueError,
                     match=f'MetaMimicConfig.early_termination_{field}'):
    config_lib.paper_config(**overrides)


def test_overrides_parse_each_field_type():
  overrides = config_lib.parse_overrides([
      'vmax=400', 'n_step=3', 'early_termination=none',
      'reward_scene_key=None', 'samples_per_insert=8',
      'numpy_actor_policy=False', 'learning_rate_range=(1e-4, 3e-4)'])
  assert overrides == {
      'vmax': 400., 'n_step': 3, 'early_termination': 'none',
      'reward_scene_key': None, 'samples_per_insert': 8.,
      'numpy_actor_policy': False, 'learning_rate_range': (1e-4, 3e-4)}
  assert type(overrides['vmax']) is float  # pylint: disable=unidiomatic-typecheck
  config = config_lib.features_config(**overrides)
  assert (config.vmax, config.n_step) == (400., 3)


@pytest.mark.parametrize('item,message', [
    ('vmax', "'vmax': expected field=value"),
    ('vmaxx=400', "'vmaxx=400': MetaMimicConfig has no field 'vmaxx'"),
    ('n_step=3.5', "'n_step=3.5': expected int, got '3.5'"),
    ('vmax=high', "'vmax=high': expected float, got 'high'"),
    ('numpy_actor_policy=1', 'expected bool'),
    ('reward_scene_key=3', 'expected None or str'),
    ('seed=3', "'seed=3': seed has its own flag"),
])
def test_bad_overrides_name_the_item(item, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    config_lib.parse_overrides([item], reserved=('seed',))


def test_an_override_given_twice_is_refused():
  with pytest.raises(ValueError, match='vmax is given twice'):
    config_lib.parse_overrides(['vmax=400', 'vmax=500'])
