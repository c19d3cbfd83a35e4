"""Tests for the Jaco stack-2-bricks environment (real MuJoCo)."""

from dm_control.utils import inverse_kinematics
import dm_env
import numpy as np
import pytest

from acme_metamimic.environments import jaco_stack


@pytest.fixture(scope='module')
def env():
  return jaco_stack.make_environment('features', seed=3)


def test_features_specs(env):
  obs_spec = env.observation_spec()
  assert set(obs_spec) == {'body', 'hand_to_target', 'features'}
  assert obs_spec['body'].shape == (18,)
  assert obs_spec['hand_to_target'].shape == (3,)
  assert obs_spec['features'].shape == (jaco_stack.FEATURES_SIZE,)
  action_spec = env.action_spec()
  assert action_spec.shape == (9,) and action_spec.dtype == np.float32
  np.testing.assert_array_equal(action_spec.minimum, -1.)
  np.testing.assert_array_equal(action_spec.maximum, 1.)
  timestep = env.reset()
  assert timestep.first()
  for name, spec in obs_spec.items():
    spec.validate(timestep.observation[name])
  timestep = env.step(np.zeros(9, np.float32))
  assert timestep.mid()
  for name, spec in obs_spec.items():
    spec.validate(timestep.observation[name])
  assert env.get_state().dtype == np.float64


def test_vision_specs():
  vision = jaco_stack.make_environment('vision', seed=0, image_size=32)
  spec = vision.observation_spec()['image']
  assert spec.shape == (32, 32, 3) and spec.dtype == np.uint8
  image = vision.reset().observation['image']
  spec.validate(image)
  assert image.std() > 0  # The camera sees a scene, not a blank frame.
  frame = vision.render(24, 40)
  assert frame.shape == (24, 40, 3)


def test_unknown_preset():
  with pytest.raises(ValueError, match='features'):
    jaco_stack.make_environment('pixels')


def test_action_rescaling(env):
  low, high = env.rescale_action(-np.ones(9)), env.rescale_action(np.ones(9))
  ctrlrange = env.physics.model.actuator_ctrlrange
  np.testing.assert_allclose(low, ctrlrange[:, 0])
  np.testing.assert_allclose(high, ctrlrange[:, 1])
  np.testing.assert_allclose(high[:3], 0.628, atol=1e-3)
  np.testing.assert_allclose(env.rescale_action(np.zeros(9)), 0., atol=1e-12)
  env.reset()
  action = np.linspace(-1, 1, 9).astype(np.float32)
  env.step(action)
  np.testing.assert_allclose(
      env.physics.data.ctrl, env.rescale_action(action), rtol=1e-6)


def _observations_equal(a, b):
  return all(np.array_equal(a[k], b[k]) for k in a)


def test_state_restore_is_deterministic(env):
  env.reset()
  rng = np.random.default_rng(0)
  for _ in range(5):
    env.step(rng.uniform(-1, 1, 9).astype(np.float32))
  state = env.get_state()
  actions = rng.uniform(-1, 1, (20, 9)).astype(np.float32)
  first = [env.step(a) for a in actions]
  env.reset()  # Move elsewhere before restoring.
  env.reset_to_state(state)
  second = [env.step(a) for a in actions]
  for a, b in zip(first, second):
    assert _observations_equal(a.observation, b.observation)
    assert a.reward == b.reward
  assert not _observations_equal(first[0].observation, first[-1].observation)


def test_reset_to_state_gives_first_with_recorded_observation(env):
  env.reset()
  rng = np.random.default_rng(1)
  for _ in range(7):
    timestep = env.step(rng.uniform(-1, 1, 9).astype(np.float32))
  state = env.get_state()
  env.reset()
  restored = env.reset_to_state(state)
  assert restored.step_type == dm_env.StepType.FIRST
  assert env.step_count == 0
  assert _observations_equal(timestep.observation, restored.observation)
  np.testing.assert_array_equal(env.get_state(), state)


def test_episode_truncates_with_discount_one():
  short = jaco_stack.make_environment('features', seed=0, episode_length=4)
  short.reset()
  steps = [short.step(np.zeros(9, np.float32)) for _ in range(4)]
  assert all(t.mid() for t in steps[:-1])
  assert steps[-1].last() and steps[-1].discount == 1.
  assert short.step(np.zeros(9, np.float32)).first()


def test_diverged_physics_ends_the_episode_instead_of_raising():
  """A PhysicsError (here a NaN velocity, MuJoCo's mjWARN_BADQVEL) used to
  propagate out of step() and kill the evaluator that stepped it."""
  diverging = jaco_stack.make_environment('features', seed=0)
  diverging.reset()
  start = diverging.get_state()
  action = np.full(9, 0.5, np.float32)
  before = diverging.step(action)
  diverging.physics.data.qvel[0] = np.nan
  diverged = diverging.step(np.zeros(9, np.float32))
  assert diverged.last()
  assert diverged.discount == 0. and diverged.reward == 0.
  assert diverged.discount.dtype == np.float32
  assert _observations_equal(diverged.observation, before.observation)
  assert diverging.physics_errors == 1
  restarted = diverging.step(np.zeros(9, np.float32))
  assert restarted.first()
  assert np.isfinite(restarted.observation['body']).all()
  assert diverging.step(np.zeros(9, np.float32)).mid()
  # Restoring a state after a divergence replays as before it.
  diverging.reset_to_state(start)
  assert _observations_equal(diverging.step(action).observation,
                             before.observation)


def test_reward_stages():
  """The scripted demonstrator reaches, lifts and stacks: the reward must pass
  through 0, REWARD_REACH, REWARD_LIFT and REWARD_STACK in that order.

  Random actions never leave stage 0, so only a demonstrator shows that each
  stage of the staged reward is earned by acting in the environment.
  """
  from acme_metamimic.demonstrations import scripted  # pylint: disable=g-import-not-at-top
  # A fresh environment: the start does not depend on which tests ran first.
  env = jaco_stack.make_environment('features', seed=3)
  demonstrator = scripted.ScriptedDemonstrator('A', 0)
  timestep = env.reset()
  demonstrator.reset(env)
  rewards = []
  # Until the first stack reward (the release and retreat after it add none).
  while not timestep.last() and jaco_stack.REWARD_STACK not in rewards:
    timestep = env.step(demonstrator.act(env, timestep))
    rewards.append(float(timestep.reward))
  rewards = np.array(rewards)
  stages = [0., jaco_stack.REWARD_REACH, jaco_stack.REWARD_LIFT,
            jaco_stack.REWARD_STACK]
  assert set(np.unique(rewards)) == set(stages), np.unique(rewards)
  # Each stage is first earned after the one before it (none is skipped).
  first = [int(np.argmax(rewards == stage)) for stage in stages]
  assert first[0] == 0 and first[1] < first[2] < first[3], first
  assert env.success


def _place_free_brick(env, centre):
  physics = env.physics
  free = env.task._bricks[1]  # pylint: disable=protected-access
  free.set_pose(physics, position=np.asarray(centre) - [0., 0., 0.0096],
                quaternion=np.array([1., 0., 0., 0.]))
  physics.forward()


def test_reward_stage_values(env):
  """Poses the arm and the free brick by hand to trigger each reward stage."""
  env.reset()
  physics = env.physics
  site = 'jaco_arm/jaco_hand/pinchsite'
  pinch = physics.named.data.site_xpos[site].copy()
  _place_free_brick(env, [pinch[0] + 0.2, pinch[1], 0.0096])
  assert env.task_reward() == 0.
  _place_free_brick(env, pinch)  # Brick held in the air at the pinch site.
  assert env.task_reward() == jaco_stack.REWARD_LIFT
  brick = np.array([0.05, -0.05, 0.0096])
  _place_free_brick(env, brick)
  inverse_kinematics.qpos_from_site_pose(
      physics, site, target_pos=brick + [0., 0., 0.01],
      joint_names=[f'jaco_arm/joint_{i}' for i in range(1, 7)], inplace=True)
  physics.forward()
  assert env.task_reward() == jaco_stack.REWARD_REACH
  # Stacked: align the free brick's hole with the base brick's stud.
  base, free = env.task._bricks  # pylint: disable=protected-access
  _, quaternion = base.get_pose(physics)
  free.set_pose(physics, quaternion=np.array(quaternion))
  physics.forward()
  offset = (physics.bind(free.holes[0, 0]).xpos
            - free.get_pose(physics)[0])
  free.set_pose(physics, position=physics.bind(base.studs[0, 0]).xpos - offset)
  physics.forward()
  assert env.task_reward() == jaco_stack.REWARD_STACK
  assert env.success and env.is_success()
  stacked = env.get_state()
  env.reset()
  before = env.get_state()
  assert env.is_success(stacked)
  assert not env.is_success()
  np.testing.assert_array_equal(env.get_state(), before)


def test_curriculum_start_state_within_first_steps():
  demos = [np.arange(400, dtype=np.float64)[:, None] * np.ones((1, 5)) + i
           * 1000 for i in range(3)]
  rng = np.random.default_rng(0)
  picks = [jaco_stack.curriculum_start_state(demos, rng, max_step=300)
           for _ in range(500)]
  steps = np.array([p[0] % 1000 for p in picks])
  demos_used = {int(p[0] // 1000) for p in picks}
  assert steps.max() < 300 and steps.min() >= 0
  assert steps.max() > 200  # Spread over the range.
  assert demos_used == {0, 1, 2}
  assert all(p.dtype == np.float64 for p in picks)
  legacy = jaco_stack.curriculum_start_state(
      demos, np.random.RandomState(0), max_step=10)
  assert legacy[0] % 1000 < 10
