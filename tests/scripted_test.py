"""Tests for the scripted stacking demonstrators (real MuJoCo)."""

from absl import logging
import numpy as np
import pytest

from acme_metamimic.demonstrations import scripted
from acme_metamimic.environments import jaco_stack

logging.set_verbosity(logging.ERROR)


@pytest.fixture(scope='module')
def env():
  return jaco_stack.make_environment('features', seed=11)


def test_unknown_style_lists_valid_styles():
  with pytest.raises(ValueError, match="'A', 'B'"):
    scripted.ScriptedDemonstrator('C', seed=0)


@pytest.mark.parametrize('style', ['A', 'B'])
def test_style_stacks_most_episodes(env, style):
  # The demonstrators stack in 60-85 % of episodes (make_demos.py logs the
  # rate: 83 % of 200 style-A episodes on 2026-12-06). Fixed seeds do not
  # give the same physics on every CPU: "3 of 4" passed CI for weeks and
  # failed on a faster machine with 2 of 4. Over 12 episodes (A 8, B 7 on
  # that machine) half is a bar a working demonstrator misses with a
  # probability of about 4 % at a 70 % rate, and a broken one meets rarely.
  results = [scripted.run_episode(env, scripted.ScriptedDemonstrator(style, i))
             for i in range(12)]
  assert sum(r['success'] for r in results) >= 6
  for r in results:
    steps = len(r['actions'])
    assert len(r['observations']) == steps + 1
    assert r['physics_states'].shape[0] == steps + 1
    assert r['rewards'].shape == r['discounts'].shape == (steps,)
    assert np.all(np.abs(r['actions']) <= 1.)
    if r['success']:
      assert r['rewards'][-1] == jaco_stack.REWARD_STACK
      assert steps < env.config.episode_length  # Stops early when done.


def test_recorded_states_replay(env):
  result = scripted.run_episode(env, scripted.ScriptedDemonstrator('A', 5))
  env.reset()
  timestep = env.reset_to_state(result['physics_states'][0])
  for t in range(10):
    timestep = env.step(result['actions'][t])
  for key, value in result['observations'][10].items():
    np.testing.assert_array_equal(timestep.observation[key], value)


def test_styles_differ_from_same_state(env):
  env.reset()
  state = env.get_state()
  runs = {style: scripted.run_episode(
      env, scripted.ScriptedDemonstrator(style, 0), state=state)
          for style in ('A', 'B')}
  length = 40
  paths = {style: np.stack([o['features'][:3] for o in run['observations']
                            [:length]]) for style, run in runs.items()}
  assert np.max(np.linalg.norm(paths['A'] - paths['B'], axis=1)) > 0.03
  assert len(runs['A']['actions']) != len(runs['B']['actions'])
