"""Kinova Jaco stack-2-bricks environment with exact state save/restore.

`JacoStack` wraps dm_control's `manipulation` stack-2-bricks task (the base
brick `duplo2x4` is welded to the table, only `duplo2x4_2` is free) built with
our own control timestep (20 Hz by default) and with all composer observables
disabled: observations are computed directly from `physics.data`.

Actions: float32 (9,) in [-1, 1]; 6 arm joint velocity targets followed by 3
finger velocity targets, each rescaled linearly to its actuator's `ctrlrange`
(+-0.628 rad/s for the large arm joints, +-0.838 rad/s for the wrist joints,
+-5 for the fingers; positive finger commands close the hand).

Observations (all float32 except `image`):
  * `body` (18,): joint positions of the 6 arm joints and 3 fingers, then the
    velocities of the same 9 joints.
  * `hand_to_target` (3,): free brick centre minus pinch-site position (m).
  * `features` (38,), laid out as:
      [0:3]   pinch-site position
      [3:12]  pinch-site rotation matrix (row-major)
      [12:15] free brick centre position
      [15:19] free brick orientation quaternion (w >= 0)
      [19:22] base brick centre position
      [22:26] base brick orientation quaternion (w >= 0)
      [26:29] pinch site -> free brick centre (same as `hand_to_target`)
      [29:32] free brick centre -> stacked position of the free brick centre
      [32:35] finger joint positions
      [35:38] free brick linear velocity
  * `image` (image_size, image_size, 3) uint8, vision preset only: the task's
    fixed `front_close` camera. MuJoCo's shadow and reflection render flags are
    set from the config (both off by default, which is about 3x cheaper).

Task reward (sparse, staged, piecewise constant; the highest stage that holds):
  * 1.0   stacked: the sum of the two corner stud-to-hole distances between the
          base brick and the free brick (dm_control's
          `bricks._min_stud_to_hole_distance`, symmetric under a 180 degree
          yaw) is below `STACK_TOLERANCE` (8 mm).
  * 0.5   lifted: the free brick's bottom is more than `LIFT_HEIGHT` (3 cm)
          above the table and its centre is within `REACH_DISTANCE` of the
          pinch site.
  * 0.125 reached: the free brick's centre is within `REACH_DISTANCE` (4 cm) of
          the pinch site.
  * 0.0   otherwise.
Success means stacked. Episodes are truncated (discount 1) after
`episode_length` steps. A step on which MuJoCo's state diverges (a
`PhysicsError`, e.g. mjWARN_BADQACC when a violent action drives the hand
into a brick) ends the episode as composer does with
`raise_exception_on_physics_error=False` (reward 0, discount 0), with the
last valid observation, a logged warning and `physics_errors` counted,
instead of killing the actor or evaluator process that stepped it: one did
kill a 60-minute run's evaluator half-way (docs/fidelity.md, Session 25).

Exact state: `get_state()` returns `mj_getState` with time, qpos, qvel, act,
the solver warm start and the controls, followed by the welded base brick's
model pose (position, quaternion; it is randomised per episode in the model,
not in qpos). Restoring a state and replaying the same actions reproduces
observations bit for bit, also after other episodes were reset in between.
"""

import dataclasses
import os
from typing import Dict, Optional, Sequence, Union

os.environ.setdefault('MUJOCO_GL', 'egl')

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging
from dm_control import composer
from dm_control import mujoco as dm_mujoco
from dm_control.manipulation import bricks
from dm_control.manipulation.shared import arenas
from dm_control.manipulation.shared import cameras
from dm_control.manipulation.shared import observations
from dm_control.manipulation.shared import robots
from dm_control.rl import control
import dm_env
from dm_env import specs
import mujoco
import numpy as np
# pylint: enable=g-import-not-at-top,wrong-import-position

PRESETS = ('features', 'vision')

REACH_DISTANCE = 0.04
LIFT_HEIGHT = 0.03
STACK_TOLERANCE = 0.008

REWARD_REACH = 0.125
REWARD_LIFT = 0.5
REWARD_STACK = 1.0

FEATURES_SIZE = 38
# `body` holds the 9 joint positions first, then their 9 velocities.
BODY_POSITIONS = 9
CAMERA_NAME = cameras.FRONT_CLOSE.name

# Duplo 2x4 geometry: the body frame sits at the centre of the brick's bottom
# face; a stacked brick's frame is one brick height above the one below.
_BRICK_HALF_HEIGHT = 0.0096
_BRICK_HEIGHT = 0.0192

_STATE_SPEC = (mujoco.mjtState.mjSTATE_FULLPHYSICS
               | mujoco.mjtState.mjSTATE_WARMSTART
               | mujoco.mjtState.mjSTATE_CTRL)


@dataclasses.dataclass(frozen=True)
class EnvironmentConfig:
  """Configuration of a `JacoStack` environment.

  Attributes:
    preset: 'features' (no image) or 'vision' (adds a rendered `image`).
    image_size: height and width of the `image` observation in pixels.
    control_timestep: seconds per agent step (0.05 = 20 Hz).
    episode_length: number of agent steps before truncation.
    shadows: render shadows in the `image` observation.
    reflections: render reflections in the `image` observation.
    seed: seed of the task's random initial conditions.
  """
  preset: str = 'features'
  image_size: int = 128
  control_timestep: float = 0.05
  episode_length: int = 400
  shadows: bool = False
  reflections: bool = False
  seed: Optional[int] = None


def _disabled_observation_settings() -> observations.ObservationSettings:
  feature = observations.ObservableSpec(
      enabled=False, update_interval=1, buffer_size=1, delay=0,
      aggregator=None, corruptor=None)
  camera = observations.CameraObservableSpec(
      height=1, width=1, **feature._asdict())
  return observations.ObservationSettings(
      proprio=feature, ftt=feature, prop_pose=feature, camera=camera)


def make_stack_task(control_timestep: float) -> bricks.Stack:
  """Builds dm_control's stack-2-bricks task with no enabled observables."""
  obs_settings = _disabled_observation_settings()
  return bricks.Stack(
      arena=arenas.Standard(),
      arm=robots.make_arm(obs_settings=obs_settings),
      hand=robots.make_hand(obs_settings=obs_settings),
      num_bricks=2,
      target_height=2,
      moveable_base=False,
      randomize_order=False,
      obs_settings=obs_settings,
      workspace=bricks._WORKSPACE,  # pylint: disable=protected-access
      control_timestep=control_timestep)


# Rewards and discounts are float32, as Acme's learners expect.
_ONE = np.float32(1.)


def _canonical_quat(quat: np.ndarray) -> np.ndarray:
  return quat if quat[0] >= 0 else -quat


class JacoStack(dm_env.Environment):
  """Jaco stack-2-bricks `dm_env.Environment` with exact state restore."""

  def __init__(self, config: EnvironmentConfig = EnvironmentConfig()):
    if config.preset not in PRESETS:
      raise ValueError(
          f'Unknown preset {config.preset!r}; valid presets: {PRESETS}.')
    self._config = config
    self._task = make_stack_task(config.control_timestep)
    self._env = composer.Environment(
        self._task,
        random_state=config.seed,
        recompile_mjcf_every_episode=False,
        strip_singleton_obs_buffer_dim=True)
    self._env.reset()
    self._index_model()
    self._camera = None
    self._step_count = 0
    self._reset_next_step = True
    self._last_observation: Optional[Dict[str, np.ndarray]] = None
    self._physics_errors = 0

  def _index_model(self):
    """Caches model indices used to compute observations and rewards."""
    physics = self._env.physics
    model = physics.model
    arm, hand = self._task.arm, self._task.hand
    joints = list(arm.joints) + list(hand.joints)
    joint_ids = physics.bind(joints).element_id
    self._qpos_idx = model.jnt_qposadr[joint_ids].copy()
    self._qvel_idx = model.jnt_dofadr[joint_ids].copy()
    actuators = list(arm.actuators) + list(hand.actuators)
    self._actuator_ids = physics.bind(actuators).element_id.copy()
    ctrlrange = model.actuator_ctrlrange[self._actuator_ids]
    self._ctrl_low = ctrlrange[:, 0].copy()
    self._ctrl_high = ctrlrange[:, 1].copy()
    self._pinch_id = physics.bind(hand.pinch_site).element_id
    base, free = self._task._bricks  # pylint: disable=protected-access
    frames = self._task._brick_frames  # pylint: disable=protected-access
    self._base_body = physics.bind(frames[0]).element_id
    self._free_body = physics.bind(frames[1]).element_id
    self._free_dof = model.jnt_dofadr[physics.bind(frames[1].freejoint).element_id]
    self._stud_ids = physics.bind(base.studs[[0, -1], [0, -1]]).element_id.copy()
    self._hole_ids = physics.bind(free.holes[[0, -1], [0, -1]]).element_id.copy()
    self._mj_state_size = mujoco.mj_stateSize(model.ptr, _STATE_SPEC)
    self._state_size = self._mj_state_size + 7

  @property
  def config(self) -> EnvironmentConfig:
    return self._config

  @property
  def physics(self) -> dm_mujoco.Physics:
    return self._env.physics

  @property
  def task(self) -> bricks.Stack:
    return self._task

  @property
  def step_count(self) -> int:
    return self._step_count

  @property
  def physics_errors(self) -> int:
    """Episodes this environment ended on a diverged physics state."""
    return self._physics_errors

  @property
  def success(self) -> bool:
    """Whether the free brick is currently stacked on the base brick."""
    return self._stud_to_hole_distance() < STACK_TOLERANCE

  def is_success(
      self, state: Optional[Union[np.ndarray, dm_env.TimeStep]] = None
  ) -> bool:
    """Whether a state (current physics if None) or timestep is stacked."""
    if state is None:
      return self.success
    if isinstance(state, dm_env.TimeStep):
      return state.reward is not None and state.reward >= REWARD_STACK
    saved = self.get_state()
    self._set_physics_state(state)
    stacked = self.success
    self._set_physics_state(saved)
    return stacked

  def reset(self) -> dm_env.TimeStep:
    self._env.reset()
    return self._restart()

  def reset_to_state(self, state: np.ndarray) -> dm_env.TimeStep:
    """Starts an episode (FIRST timestep) at exactly the given physics state."""
    self._set_physics_state(state)
    return self._restart()

  def _restart(self) -> dm_env.TimeStep:
    self._step_count = 0
    self._reset_next_step = False
    self._last_observation = self._observation()
    return dm_env.restart(self._last_observation)

  def step(self, action: np.ndarray) -> dm_env.TimeStep:
    if self._reset_next_step:
      return self.reset()
    try:
      self._env.step(self.rescale_action(action))
    except control.PhysicsError as error:
      # MuJoCo has reset `physics.data` to the model's defaults by now, so
      # the observation is the last valid one; the next step() resets.
      self._physics_errors += 1
      self._reset_next_step = True
      logging.warning('JacoStack: %s at step %d; the episode ends there '
                      '(%d so far).', error, self._step_count + 1,
                      self._physics_errors)
      return dm_env.TimeStep(dm_env.StepType.LAST, np.float32(0.),
                             np.float32(0.), self._last_observation)
    self._step_count += 1
    observation = self._observation()
    self._last_observation = observation
    reward = np.float32(self.task_reward())
    if self._step_count >= self._config.episode_length:
      self._reset_next_step = True
      return dm_env.truncation(reward, observation, _ONE)
    return dm_env.transition(reward, observation, _ONE)

  def rescale_action(self, action: np.ndarray) -> np.ndarray:
    """Maps a [-1, 1] action to the actuators' control ranges."""
    action = np.clip(np.asarray(action, dtype=np.float64), -1., 1.)
    return self._ctrl_low + (action + 1.) * 0.5 * (
        self._ctrl_high - self._ctrl_low)

  def get_state(self) -> np.ndarray:
    """Returns the exact physics state as a float64 vector."""
    physics = self._env.physics
    state = np.empty(self._state_size, dtype=np.float64)
    mujoco.mj_getState(physics.model.ptr, physics.data.ptr,
                       state[:self._mj_state_size], _STATE_SPEC)
    state[self._mj_state_size:self._mj_state_size + 3] = (
        physics.model.body_pos[self._base_body])
    state[self._mj_state_size + 3:] = physics.model.body_quat[self._base_body]
    return state

  def _set_physics_state(self, state: np.ndarray):
    state = np.asarray(state, dtype=np.float64)
    if state.shape != (self._state_size,):
      raise ValueError(f'State has shape {state.shape}, expected '
                       f'({self._state_size},).')
    physics = self._env.physics
    base_pose = state[self._mj_state_size:]
    physics.model.body_pos[self._base_body] = base_pose[:3]
    physics.model.body_quat[self._base_body] = base_pose[3:]
    mujoco.mj_setState(physics.model.ptr, physics.data.ptr,
                       state[:self._mj_state_size], _STATE_SPEC)
    physics.forward()
    # mj_forward overwrites the solver warm start; put the recorded one back.
    mujoco.mj_setState(physics.model.ptr, physics.data.ptr,
                       state[:self._mj_state_size], _STATE_SPEC)

  def _brick_centre(self, body_id: int) -> np.ndarray:
    data = self._env.physics.data
    return data.xpos[body_id] + data.xmat[body_id].reshape(3, 3)[:, 2] * (
        _BRICK_HALF_HEIGHT)

  def _stud_to_hole_distance(self) -> float:
    site_xpos = self._env.physics.data.site_xpos
    studs = site_xpos[self._stud_ids]
    holes = site_xpos[self._hole_ids]
    straight = np.linalg.norm(studs - holes, axis=1).sum()
    flipped = np.linalg.norm(studs[::-1] - holes, axis=1).sum()
    return min(straight, flipped)

  def task_reward(self) -> float:
    """Staged task reward of the current physics state (module docstring)."""
    if self._stud_to_hole_distance() < STACK_TOLERANCE:
      return REWARD_STACK
    data = self._env.physics.data
    hand_to_brick = self._brick_centre(self._free_body) - data.site_xpos[
        self._pinch_id]
    if np.linalg.norm(hand_to_brick) >= REACH_DISTANCE:
      return 0.
    if data.xpos[self._free_body][2] > LIFT_HEIGHT:
      return REWARD_LIFT
    return REWARD_REACH

  def _observation(self) -> Dict[str, np.ndarray]:
    data = self._env.physics.data
    qpos = data.qpos[self._qpos_idx]
    pinch = data.site_xpos[self._pinch_id]
    free = self._brick_centre(self._free_body)
    base = self._brick_centre(self._base_body)
    base_up = data.xmat[self._base_body].reshape(3, 3)[:, 2]
    hand_to_target = free - pinch
    features = np.concatenate([
        pinch,
        data.site_xmat[self._pinch_id],
        free,
        _canonical_quat(data.xquat[self._free_body]),
        base,
        _canonical_quat(data.xquat[self._base_body]),
        hand_to_target,
        base + base_up * _BRICK_HEIGHT - free,
        qpos[6:],
        data.qvel[self._free_dof:self._free_dof + 3],
    ])
    observation = {
        'body': np.concatenate([qpos, data.qvel[self._qvel_idx]]).astype(
            np.float32),
        'hand_to_target': hand_to_target.astype(np.float32),
        'features': features.astype(np.float32),
    }
    if self._config.preset == 'vision':
      observation['image'] = self._render_image()
    return observation

  def _render_image(self) -> np.ndarray:
    if self._camera is None:
      size = self._config.image_size
      self._camera = dm_mujoco.Camera(
          self._env.physics, height=size, width=size, camera_id=CAMERA_NAME)
    return self._camera.render(render_flag_overrides=self._render_flags())

  def _render_flags(self) -> Dict[str, bool]:
    return {'shadow': self._config.shadows,
            'reflection': self._config.reflections}

  def render(self, height: int = 240, width: int = 320,
             camera_id: Union[int, str] = CAMERA_NAME) -> np.ndarray:
    """Renders an RGB frame (e.g. for videos) with the configured flags."""
    return self._env.physics.render(
        height=height, width=width, camera_id=camera_id,
        render_flag_overrides=self._render_flags())

  def observation_spec(self) -> Dict[str, specs.Array]:
    spec = {
        'body': specs.Array((18,), np.float32, name='body'),
        'hand_to_target': specs.Array((3,), np.float32, name='hand_to_target'),
        'features': specs.Array((FEATURES_SIZE,), np.float32, name='features'),
    }
    if self._config.preset == 'vision':
      size = self._config.image_size
      spec['image'] = specs.BoundedArray(
          (size, size, 3), np.uint8, minimum=0, maximum=255, name='image')
    return spec

  def action_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray(
        (9,), np.float32, minimum=-1., maximum=1., name='action')

  def reward_spec(self) -> specs.Array:
    return specs.Array((), np.float32, name='reward')

  def discount_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray(
        (), np.float32, minimum=0., maximum=1., name='discount')

  def close(self):
    self._camera = None
    self._env.close()


def curriculum_start_state(demo_states: Sequence[np.ndarray],
                           rng: Union[np.random.Generator,
                                      np.random.RandomState],
                           max_step: int = 300) -> np.ndarray:
  """Returns a random state among the first `max_step` steps of a random demo.

  Args:
    demo_states: per demonstration, an array (or sequence) of physics states.
    rng: numpy random generator or RandomState.
    max_step: states are drawn from indices [0, min(max_step, len(demo))).
  """
  if not demo_states:
    raise ValueError('No demonstrations to start from.')
  draw = rng.integers if isinstance(rng, np.random.Generator) else rng.randint
  states = demo_states[int(draw(len(demo_states)))]
  limit = max(1, min(max_step, len(states)))
  return np.array(states[int(draw(limit))], dtype=np.float64)


def make_environment(preset: str = 'features', seed: Optional[int] = None,
                     **kwargs) -> JacoStack:
  """Builds a `JacoStack` from `EnvironmentConfig` fields."""
  return JacoStack(EnvironmentConfig(preset=preset, seed=seed, **kwargs))
