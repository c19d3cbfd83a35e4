"""ImitationEnvironment on a real JacoStack and real scripted demos.

Every expected value is built from the demonstration itself (its frames and
physics states), never from what the environment reports, so a goal that is
off by one frame or an early termination at the wrong step fails here.
"""

import dataclasses

from acme import wrappers
import dm_env
import numpy as np
import pytest

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import environments
from acme_metamimic.demonstrations import scripted
from acme_metamimic.environments import imitation

NUM_STEPS = 40


@pytest.fixture(scope='module')
def env():
  return environments.make_environment('features', seed=5)


@pytest.fixture(scope='module')
def demos(env):
  """Two style-A demos, with actions, cut to `NUM_STEPS` steps."""
  return [scripted.record_demonstration(
      env, scripted.ScriptedDemonstrator('A', seed=i), episode_id=i,
      include_actions=True).prefix(NUM_STEPS) for i in range(2)]


def _imitation_env(env, demos, curriculum=False, **config):
  builder = builder_lib.MetaMimicBuilder(config_lib.features_config(
      curriculum_max_step=25, **config))
  return builder, builder.make_imitation_environment(
      env, demos, seed=4, curriculum=curriculum)


def _assert_frame_equal(observation, frame):
  assert set(observation) == set(frame)
  for key in frame:
    np.testing.assert_array_equal(observation[key], frame[key], err_msg=key)


def _rollout(im_env, actions):
  """Steps until LAST; returns the timesteps after `timestep`."""
  steps = []
  for action in actions:
    steps.append(im_env.step(action))
    if steps[-1].last():
      break
  return steps


@pytest.mark.parametrize('curriculum', [False, True])
def test_goal_is_the_demos_next_frame_at_reset_and_after_every_step(
    env, demos, curriculum):
  _, im_env = _imitation_env(env, demos, curriculum,
                             early_termination='none')
  rng = np.random.default_rng(0)
  starts = set()
  for _ in range(4):
    timestep = im_env.reset()
    demo = demos[int(im_env.episode_metrics['demo_id'])]
    start = int(im_env.episode_metrics['start_frame'])
    starts.add(start)
    # The simulator starts at the demo's frame `start`, bit for bit.
    _assert_frame_equal(timestep.observation['observation'], demo.frame(start))
    _assert_frame_equal(timestep.observation['goal'], demo.frame(start + 1))
    actions = rng.uniform(-1, 1, (NUM_STEPS, 9)).astype(np.float32)
    steps = _rollout(im_env, actions)
    # Without early termination the episode follows the demo to its end.
    assert len(steps) == NUM_STEPS - start
    for k, step in enumerate(steps[:-1], start=1):
      _assert_frame_equal(step.observation['goal'], demo.frame(start + k + 1))
  if curriculum:
    assert len(starts) > 1 and all(0 <= s < 25 for s in starts)
  else:
    assert starts == {0}


def _rewards_and_hand_errors(builder, im_env, demo, actions):
  """Eq. 2 and the hand-to-target error at each step, against the demo."""
  reward = builder.make_imitation_reward()
  rewards, errors = [], []
  im_env.reset_to_demo(demo)
  for t, step in enumerate(_rollout(im_env, actions), start=1):
    observation = step.observation['observation']
    rewards.append(reward(observation, demo.frame(t)))
    errors.append(np.linalg.norm(observation['hand_to_target'] -
                                 demo.frame(t)['hand_to_target']))
  return np.asarray(rewards), np.asarray(errors)


def _drifting_actions(demo, exact_steps):
  """The demo's own actions for `exact_steps` steps, then a steady push."""
  actions = np.tile(np.float32([1., -1., 1., 0., 0., 0., 0., 0., 0.]),
                    (NUM_STEPS, 1))
  actions[:exact_steps] = demo.actions[:exact_steps]
  return actions


@pytest.mark.parametrize('mode', ['reward', 'hand_to_target'])
def test_early_termination_ends_imitation_but_only_truncates_the_task(
    env, demos, mode):
  demo = demos[0]
  actions = _drifting_actions(demo, exact_steps=5)
  builder, free_env = _imitation_env(env, demos, early_termination='none')
  rewards, errors = _rewards_and_hand_errors(builder, free_env, demo, actions)
  # Replaying the demo's actions tracks it exactly; the push then drifts off.
  np.testing.assert_allclose(rewards[:5], 17.)
  # A cutoff / threshold crossed for the first time at step 9 (1-based).
  if mode == 'reward':
    config = dict(early_termination_cutoff=float(rewards[8] + rewards[7]) / 2)
    crossed = rewards < config['early_termination_cutoff']
  else:
    config = dict(hand_to_target_threshold=float(errors[8] + errors[7]) / 2)
    crossed = errors > config['hand_to_target_threshold']
  first = int(np.flatnonzero(crossed)[0]) + 1
  assert first == 9

  _, im_env = _imitation_env(env, demos, early_termination=mode, **config)
  im_env.reset_to_demo(demo)
  steps = _rollout(im_env, actions)
  assert len(steps) == first
  assert all(s.mid() for s in steps[:-1])
  assert steps[-1].last()
  for step in steps[:-1]:
    assert step.discount == {'imitation': 1., 'task': 1.}
  assert steps[-1].discount == {'imitation': 0., 'task': 1.}
  assert im_env.episode_metrics['early_terminated'] == 1.


def test_cutoff_schedule_runs_on_the_environments_steps_across_episodes(
    env, demos):
  demo = demos[0]
  drifting = _drifting_actions(demo, exact_steps=5)
  builder, free_env = _imitation_env(env, demos, early_termination='none')
  rewards, _ = _rewards_and_hand_errors(builder, free_env, demo, drifting)
  final_cutoff = float(rewards[8] + rewards[7]) / 2
  assert int(np.flatnonzero(rewards < final_cutoff)[0]) + 1 == 9
  # The cutoff starts at 0 (nothing ends) and reaches `final_cutoff` after
  # NUM_STEPS env steps: exactly one episode that follows the demo's actions.
  _, im_env = _imitation_env(
      env, demos, early_termination='reward', early_termination_cutoff=0.,
      early_termination_final_cutoff=final_cutoff,
      early_termination_schedule_steps=NUM_STEPS)
  im_env.reset_to_demo(demo)
  steps = _rollout(im_env, demo.actions)
  assert len(steps) == NUM_STEPS
  assert im_env.episode_metrics['early_terminated'] == 0.
  # Then the same drift ends at step 9, as under the constant final cutoff.
  im_env.reset_to_demo(demo)
  steps = _rollout(im_env, drifting)
  assert len(steps) == 9
  assert steps[-1].discount == {'imitation': 0., 'task': 1.}
  # On a fresh environment the cutoff at step 9 is 9 / NUM_STEPS of it.
  _, fresh_env = _imitation_env(
      env, demos, early_termination='reward', early_termination_cutoff=0.,
      early_termination_final_cutoff=final_cutoff,
      early_termination_schedule_steps=NUM_STEPS)
  fresh_env.reset_to_demo(demo)
  steps = _rollout(fresh_env, drifting)
  scheduled = final_cutoff * np.arange(1, NUM_STEPS + 1) / NUM_STEPS
  crossed = np.flatnonzero(rewards < scheduled[:len(rewards)])
  expected = int(crossed[0]) + 1 if crossed.size else len(rewards)
  assert len(steps) == expected
  assert expected != 9


def test_demo_end_is_a_truncation_for_both_tables(env, demos):
  _, im_env = _imitation_env(env, demos, early_termination='reward')
  im_env.reset_to_demo(demos[1])
  steps = _rollout(im_env, demos[1].actions)
  assert len(steps) == NUM_STEPS
  assert steps[-1].last()
  assert steps[-1].discount == {'imitation': 1., 'task': 1.}
  assert im_env.episode_metrics['early_terminated'] == 0.


class _TerminatesAt(wrappers.EnvironmentWrapper):
  """Ends the task itself (discount 0) at its `step`-th step."""

  def __init__(self, environment, step):
    super().__init__(environment)
    self._end, self._steps = step, 0

  def reset_to_state(self, state):
    self._steps = 0
    return self._environment.reset_to_state(state)

  def step(self, action):
    self._steps += 1
    timestep = self._environment.step(action)
    if self._steps == self._end:
      return dm_env.termination(timestep.reward, timestep.observation)
    return timestep


def test_a_task_terminal_stays_terminal_for_both_tables(env, demos):
  _, im_env = _imitation_env(_TerminatesAt(env, 7), demos,
                             early_termination='none')
  im_env.reset_to_demo(demos[0])
  steps = _rollout(im_env, demos[0].actions)
  assert len(steps) == 7 and steps[-1].last()
  assert steps[-1].discount == {'imitation': 0., 'task': 0.}


def test_discount_spec_has_one_entry_per_table(env, demos):
  _, im_env = _imitation_env(env, demos)
  spec = im_env.discount_spec()
  assert set(spec) == {'imitation', 'task'}
  assert spec['imitation'] == spec['task'] == env.discount_spec()
  assert imitation.IMITATION == 'imitation' and imitation.TASK == 'task'


def _starts(im_env, num_resets):
  """(demo id, start frame) of `num_resets` resets."""
  starts = []
  for _ in range(num_resets):
    im_env.reset()
    metrics = im_env.episode_metrics
    starts.append((int(metrics['demo_id']), int(metrics['start_frame'])))
  return starts


def test_peak_starts_come_from_the_frames_before_the_highest_reward(
    env, demos):
  """`curriculum_peak_fraction` of starts precede the demo's peak reward.

  Demo 0 is given rewards that reach 0.5 at step 10 and 1.0 at step 30, so
  its peak frame is 31 (rewards[t] follows frame t); demo 1's rewards are
  all 0, so it keeps the curriculum's first 25 frames.
  """
  rewards = np.zeros(NUM_STEPS, np.float32)
  rewards[10:] = 0.5
  rewards[30:] = 1.
  shaped = [dataclasses.replace(demos[0], rewards=rewards),
            dataclasses.replace(demos[1], rewards=np.zeros_like(rewards))]
  assert imitation.peak_frame(shaped[0]) == 31
  assert imitation.peak_frame(shaped[1]) is None
  ids = [demo.episode_id for demo in shaped]

  _, im_env = _imitation_env(env, shaped, curriculum=True,
                             curriculum_peak_fraction=1.,
                             curriculum_peak_window=4)
  starts = _starts(im_env, 200)
  peak_starts = {t for i, t in starts if i == ids[0]}
  assert peak_starts == {27, 28, 29, 30}
  assert all(0 <= t < 25 for i, t in starts if i == ids[1])
  assert len({t for i, t in starts if i == ids[1]}) > 10

  _, im_env = _imitation_env(env, shaped, curriculum=True,
                             curriculum_peak_fraction=0.5,
                             curriculum_peak_window=4)
  demo0 = [t for i, t in _starts(im_env, 400) if i == ids[0]]
  share = np.mean([t >= 27 for t in demo0])
  assert 0.35 < share < 0.65, share
  assert all(t < 25 or 27 <= t <= 30 for t in demo0)

  # Fraction 0 (the paper's curriculum) never leaves the first 25 frames,
  # and neither does a fraction without the curriculum (first frame only).
  _, im_env = _imitation_env(env, shaped, curriculum=True)
  assert max(t for _, t in _starts(im_env, 200)) < 25
  _, im_env = _imitation_env(env, shaped, curriculum_peak_fraction=1.)
  assert {t for _, t in _starts(im_env, 20)} == {0}

  with pytest.raises(ValueError, match='curriculum_peak_fraction'):
    config_lib.features_config(curriculum_peak_fraction=1.5)
  with pytest.raises(ValueError, match='curriculum_peak_window'):
    config_lib.features_config(curriculum_peak_window=0)
