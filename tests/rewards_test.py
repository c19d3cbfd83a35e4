"""Tests for eq. 2 and early termination."""

import numpy as np
import pytest

from acme_metamimic import rewards


def _frame(rng, image=True):
  frame = {
      'body': rng.normal(size=18).astype(np.float32),
      'features': rng.normal(size=20).astype(np.float32),
      'hand_to_target': rng.normal(size=3).astype(np.float32) * 0.1,
  }
  if image:
    frame['image'] = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
  return frame


@pytest.mark.parametrize('image', [True, False])
def test_exact_match_gives_beta1_plus_beta2(image):
  reward = rewards.ImitationReward(beta_image=15., beta_body=2.)
  frame = _frame(np.random.default_rng(0), image)
  assert reward(frame, frame) == pytest.approx(17.)
  assert reward.maximum == 17.


@pytest.mark.parametrize('key', ['body', 'features', 'image'])
def test_reward_falls_monotonically_with_distance(key):
  reward = rewards.ImitationReward()
  rng = np.random.default_rng(1)
  # The features term stands in for the image term when there is no image.
  goal = _frame(rng, image=key != 'features')
  if key == 'image':
    goal['image'] = np.full((16, 16, 3), 128, np.uint8)
  direction = rng.normal(size=goal[key].shape)
  values = []
  for scale in np.linspace(0., 3., 13):
    observation = dict(goal)
    if key == 'image':
      observation[key] = np.clip(128 + 40 * scale * np.sign(direction), 0,
                                 255).astype(np.uint8)
    else:
      step = 0.02 if key == 'features' else 0.2  # Features are scaled by 100.
      observation[key] = (goal[key] + step * scale * direction).astype(
          np.float32)
    values.append(reward(observation, goal))
  assert all(a > b for a, b in zip(values, values[1:])), values
  assert values[0] == pytest.approx(17.)


def test_reward_stays_in_range_for_random_frames():
  reward = rewards.ImitationReward()
  rng = np.random.default_rng(2)
  for _ in range(200):
    value = reward(_frame(rng), _frame(rng))
    assert 0. <= value <= 17.


def test_non_finite_observation_is_rejected():
  reward = rewards.ImitationReward()
  frame = _frame(np.random.default_rng(3))
  bad = dict(frame, body=np.full(18, np.nan, np.float32))
  with pytest.raises(ValueError, match='NaN or inf'):
    reward(bad, frame)


def test_custom_keys_for_other_environments():
  reward = rewards.ImitationReward(body_key='position', scene_key='velocity',
                                   feature_distance_scale=1.)
  goal = {'position': np.zeros(2), 'velocity': np.zeros(2)}
  observation = {'position': np.array([1., 0.]), 'velocity': np.array([0., 2.])}
  assert reward(observation, goal) == pytest.approx(
      15. * np.exp(-4.) + 2. * np.exp(-1.))


def test_early_termination_on_reward_cutoff():
  termination = rewards.EarlyTermination(mode='reward', cutoff=0.5)
  frame = _frame(np.random.default_rng(4))
  assert termination(frame, frame, 0.49)
  assert not termination(frame, frame, 0.5)


def test_cutoff_schedule_moves_linearly_then_holds():
  termination = rewards.EarlyTermination(mode='reward', cutoff=0.5,
                                         final_cutoff=2.0,
                                         cutoff_schedule_steps=100)
  assert [termination.cutoff_at(n) for n in (0, 50, 100, 10_000)] == [
      0.5, 1.25, 2.0, 2.0]
  frame = _frame(np.random.default_rng(7))
  assert not termination(frame, frame, 1.0, env_steps=0)
  assert not termination(frame, frame, 1.0, env_steps=33)
  assert termination(frame, frame, 1.0, env_steps=34)
  assert termination(frame, frame, 1.99, env_steps=100)
  # Without a final cutoff the step count changes nothing.
  constant = rewards.EarlyTermination(mode='reward', cutoff=0.5)
  assert constant.cutoff_at(10_000) == 0.5
  assert not constant(frame, frame, 0.5, env_steps=10_000)


def test_early_termination_on_hand_to_target_distance():
  termination = rewards.EarlyTermination(mode='hand_to_target',
                                         threshold=0.01)
  goal = _frame(np.random.default_rng(5))
  near = dict(goal, hand_to_target=goal['hand_to_target'] + [0.005, 0., 0.])
  far = dict(goal, hand_to_target=goal['hand_to_target'] + [0.011, 0., 0.])
  assert not termination(near, goal, 17.)
  assert termination(far, goal, 17.)


def test_no_early_termination():
  termination = rewards.EarlyTermination(mode='none')
  frame = _frame(np.random.default_rng(6))
  assert not termination(frame, frame, 0.)
