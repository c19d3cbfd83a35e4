"""Scripted stacking demonstrators for the Jaco stack-2-bricks environment.

A demonstrator moves a reference pose for the pinch site along a path through
phase goals (approach, descend, grasp, lift, transport, place, release,
retreat), solves inverse kinematics for the reference on a scratch copy of the
physics, and commands arm joint velocities towards the solution (the whole
joint velocity vector is scaled down to respect the actuator limits).

Two styles are provided:
  * 'A' (training demonstrator): straight-line paths at 0.15 m/s, comes
    straight down onto the brick from above, grasps low, carries the brick at
    a low height, drops it onto the studs from above, small action noise.
  * 'B' (held-out demonstrator): slower (0.14 m/s) curved paths, approaches the
    brick from the side along an arc, grasps higher, pauses after grasping and
    before releasing, carries the brick high along an arc, lowers it slowly,
    larger action noise.
"""

import dataclasses
from typing import Any, Dict, Optional

import dm_env
from dm_control.utils import inverse_kinematics
from dm_control.entities.manipulators import base as manipulator_base
import numpy as np

from acme_metamimic.demonstrations import dataset
from acme_metamimic.environments import jaco_stack

_PINCH_SITE = 'jaco_arm/jaco_hand/pinchsite'
_ARM_JOINTS = tuple(f'jaco_arm/joint_{i}' for i in range(1, 7))
_OPEN, _CLOSE = -1., 1.


@dataclasses.dataclass(frozen=True)
class _Style:
  """Parameters of a demonstrator style."""
  speed: float  # Reference speed along paths, m/s.
  approach_height: float  # Pre-grasp height of the pinch site above the brick.
  approach_side: float  # Horizontal offset of the pre-grasp pose (0 = above).
  arc_height: float  # Extra height of the Bezier control point of each path.
  grasp_offset: float  # Pinch-site height above the brick centre at grasp.
  grasp_steps: int  # Steps spent closing the fingers.
  pause_steps: int  # Extra still steps after grasping and before releasing.
  carry_height: float  # Clearance of the brick above the stack in transit.
  place_speed: float  # Speed of the final lowering onto the studs, m/s.
  press_depth: float  # How far below the stacked pose the brick is pushed.
  noise: float  # Std of Gaussian noise added to arm actions.


STYLES = {
    'A': _Style(speed=0.15, approach_height=0.08, approach_side=0.,
                arc_height=0., grasp_offset=0.0, grasp_steps=24,
                pause_steps=0, carry_height=0.04, place_speed=0.08,
                press_depth=0.01, noise=0.02),
    'B': _Style(speed=0.14, approach_height=0.05, approach_side=0.07,
                arc_height=0.06, grasp_offset=0.004, grasp_steps=28,
                pause_steps=6, carry_height=0.08, place_speed=0.05,
                press_depth=0.01, noise=0.06),
}

_HOLD_STEPS = 10
_PRESS_STEPS = 6
_ALIGN_HEIGHT = 0.012
_DROP_DISTANCE = 0.05
_LAST_PHASE = 8
_PHASE_TIMEOUT = 80


def _yaw_quat(yaw: float) -> np.ndarray:
  return np.array([np.cos(yaw / 2), 0., 0., np.sin(yaw / 2)])


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  w1, x1, y1, z1 = a
  w2, x2, y2, z2 = b
  return np.array([
      w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
      w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
      w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
      w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
  ])


def _wrap(angle: float, period: float = 2 * np.pi) -> float:
  return (angle + period / 2) % period - period / 2


class ScriptedDemonstrator:
  """Phase-based IK demonstrator that stacks the free brick on the base."""

  def __init__(self, style: str, seed: int):
    if style not in STYLES:
      raise ValueError(
          f'Unknown demonstrator style {style!r}; valid styles: '
          f'{sorted(STYLES)}.')
    self._style_name = style
    self._style = STYLES[style]
    self._rng = np.random.default_rng(seed)
    self._scratch = None
    self.done = False

  @property
  def style(self) -> str:
    return self._style_name

  def reset(self, env: jaco_stack.JacoStack):
    """Prepares for a new episode in `env` (call after the env's reset)."""
    self._scratch = env.physics.copy(share_model=True)
    self._phase = 0
    self._phase_steps = 0
    self._hold = 0
    self._start = None
    self._progress = 0.
    self._settle = 0
    self.done = False

  def _pinch(self, physics) -> np.ndarray:
    return physics.named.data.site_xpos[_PINCH_SITE].copy()

  def _hand_yaw(self, physics) -> float:
    x_axis = physics.named.data.site_xmat[_PINCH_SITE].reshape(3, 3)[:, 0]
    return float(np.arctan2(-x_axis[0], x_axis[1]))

  @staticmethod
  def _brick(features):
    """Free brick centre, yaw, and target centre of the stacked brick."""
    centre = features[12:15].astype(np.float64)
    w, _, _, z = features[15:19]
    base_w, _, _, base_z = features[22:26]
    yaw = 2 * np.arctan2(z, w)
    base_yaw = 2 * np.arctan2(base_z, base_w)
    target = centre + features[29:32]
    return centre, yaw, target, base_yaw

  def _goal(self, env, features):
    """Returns (position, yaw, fingers, path control offset) of the phase."""
    s = self._style
    physics = env.physics
    pinch = self._pinch(physics)
    hand_yaw = self._hand_yaw(physics)
    centre, yaw, target, base_yaw = self._brick(features)
    grasp_yaw = hand_yaw + _wrap(yaw - np.pi / 2 - hand_yaw, np.pi)
    long_axis = np.array([-np.sin(yaw), np.cos(yaw), 0.])
    if long_axis @ (pinch - centre) < 0:
      long_axis = -long_axis
    up = np.array([0., 0., 1.])
    stack_yaw = hand_yaw + _wrap(base_yaw - yaw, np.pi)
    to_brick = pinch - centre
    phase = self._phase
    if phase == 0:  # Approach the pre-grasp pose.
      goal = (centre + up * (s.approach_height + s.grasp_offset)
              + long_axis * s.approach_side)
      return goal, grasp_yaw, _OPEN, s.arc_height
    if phase == 1:  # Descend (or sweep in from the side) onto the brick.
      return centre + up * s.grasp_offset, grasp_yaw, _OPEN, 0.
    if phase == 2:  # Close the fingers.
      return self._start, hand_yaw, _CLOSE, 0.
    if phase == 3:  # Lift.
      goal = pinch.copy()
      goal[2] = target[2] + s.carry_height + to_brick[2]
      return goal, hand_yaw, _CLOSE, 0.
    if phase == 4:  # Carry above the stack.
      return (target + up * s.carry_height + to_brick, stack_yaw, _CLOSE,
              s.arc_height)
    if phase == 5:  # Align the brick just above the studs.
      return (target + up * _ALIGN_HEIGHT + to_brick, stack_yaw, _CLOSE, 0.)
    if phase == 6:  # Lower onto the studs and press.
      return (target - up * s.press_depth + to_brick, stack_yaw, _CLOSE, 0.)
    if phase == 7:  # Release.
      return self._start, hand_yaw, _OPEN, 0.
    return self._start + up * 0.08, hand_yaw, _OPEN, 0.

  def _phase_speed(self) -> float:
    return self._style.place_speed if self._phase in (5, 6) else (
        self._style.speed)

  def _phase_length(self) -> Optional[int]:
    if self._phase == 2:
      return self._style.grasp_steps + self._style.pause_steps
    if self._phase == 7:
      return self._style.grasp_steps + self._style.pause_steps
    return None

  def act(self, env: jaco_stack.JacoStack,
          timestep: dm_env.TimeStep) -> np.ndarray:
    """Returns the next 9-D action in [-1, 1]."""
    physics = env.physics
    features = timestep.observation['features']
    if self._start is None:
      self._start = self._pinch(physics)
      self._progress = 0.
    goal, yaw, fingers, arc = self._goal(env, features)
    path = goal - self._start
    length = np.linalg.norm(path)
    dt = env.config.control_timestep
    self._progress = min(
        1., self._progress + self._phase_speed() * dt / max(length, 1e-6))
    t = self._progress
    control = 0.5 * (self._start + goal) + np.array([0., 0., arc])
    reference = ((1 - t) ** 2 * self._start + 2 * t * (1 - t) * control
                 + t ** 2 * goal)
    action = np.zeros(9)
    action[:6] = self._arm_action(env, reference, yaw)
    action[:6] += self._rng.normal(0., self._style.noise, 6)
    action[6:] = fingers
    self._advance(env, goal, timestep)
    return np.clip(action, -1., 1.).astype(np.float32)

  def _arm_action(self, env, reference, yaw) -> np.ndarray:
    physics = env.physics
    scratch = self._scratch
    scratch.data.qpos[:] = physics.data.qpos
    quat = _quat_mul(_yaw_quat(yaw), manipulator_base.DOWN_QUATERNION)
    result = inverse_kinematics.qpos_from_site_pose(
        scratch, _PINCH_SITE, target_pos=reference, target_quat=quat,
        joint_names=_ARM_JOINTS, tol=1e-10, max_steps=40, inplace=True)
    joint_ids = [physics.model.name2id(name, 'joint') for name in _ARM_JOINTS]
    qpos_idx = physics.model.jnt_qposadr[joint_ids]
    error = np.array([_wrap(e) for e in
                      result.qpos[qpos_idx] - physics.data.qpos[qpos_idx]])
    velocity = error / (2 * env.config.control_timestep)
    low, high = env.rescale_action(-np.ones(9)), env.rescale_action(np.ones(9))
    ratio = np.max(np.abs(velocity) / high[:6])
    if ratio > 1:
      velocity = velocity / ratio
    return 2 * (velocity - low[:6]) / (high[:6] - low[:6]) - 1

  def _advance(self, env, goal, timestep):
    """Moves to the next phase when the current one is complete."""
    self._phase_steps += 1
    length = self._phase_length()
    if self._progress >= 1:
      self._settle += 1
    if length is not None:
      complete = self._phase_steps >= length
    elif self._phase == 5:
      error = timestep.observation['features'][29:32]
      complete = self._settle >= 2 and np.linalg.norm(error[:2]) < 0.001
    elif self._phase == 6:
      complete = self._settle >= _PRESS_STEPS
    else:
      reached = np.linalg.norm(self._pinch(env.physics) - goal) < 0.01
      complete = self._progress >= 1 and reached
    complete = complete or self._phase_steps >= _PHASE_TIMEOUT
    dropped = np.linalg.norm(timestep.observation['hand_to_target']) > (
        _DROP_DISTANCE)
    if 3 <= self._phase <= 6 and dropped:
      self._phase = -1  # The grasp failed: start over from the approach.
      complete = True
    if self._phase == _LAST_PHASE and self._progress >= 1:
      self._hold = self._hold + 1 if env.success else 0
      self.done = self._hold >= _HOLD_STEPS
    if complete and self._phase < _LAST_PHASE:
      self._phase += 1
      self._phase_steps = 0
      self._settle = 0
      self._start = self._pinch(env.physics)
      self._progress = 0.


def run_episode(env: jaco_stack.JacoStack,
                demonstrator: ScriptedDemonstrator,
                state: Optional[np.ndarray] = None) -> Dict[str, Any]:
  """Runs one demonstration episode.

  Args:
    env: the environment.
    demonstrator: the demonstrator to run.
    state: optional physics state to start from (random reset if None).

  Returns:
    A dict with per-step `observations` (list of dicts, T + 1 entries),
    `actions` (T, 9), `rewards` (T,), `discounts` (T,), `physics_states`
    (T + 1, S: the state before each step plus the final one) and `success`
    (whether the brick is stacked at the end).
  """
  timestep = env.reset() if state is None else env.reset_to_state(state)
  demonstrator.reset(env)
  observations = [timestep.observation]
  states = [env.get_state()]
  actions, rewards, discounts = [], [], []
  while not timestep.last() and not demonstrator.done:
    action = demonstrator.act(env, timestep)
    timestep = env.step(action)
    actions.append(action)
    rewards.append(timestep.reward)
    discounts.append(timestep.discount)
    observations.append(timestep.observation)
    states.append(env.get_state())
  return {
      'observations': observations,
      'actions': np.asarray(actions, dtype=np.float32).reshape(-1, 9),
      'rewards': np.asarray(rewards, dtype=np.float64),
      'discounts': np.asarray(discounts, dtype=np.float64),
      'physics_states': np.asarray(states, dtype=np.float64),
      'success': bool(env.success),
  }


def record_demonstration(env: jaco_stack.JacoStack,
                         demonstrator: ScriptedDemonstrator,
                         episode_id: int = 0,
                         include_actions: bool = False
                         ) -> dataset.Demonstration:
  """One episode of `demonstrator` as an in-memory `dataset.Demonstration`.

  The same demo a recorded set would load, without the round trip through
  files: tests and benchmarks use it to get a real demo in about a second.
  """
  episode = run_episode(env, demonstrator)
  return dataset.Demonstration(
      observations={key: np.stack([o[key] for o in episode['observations']])
                    for key in episode['observations'][0]},
      physics_states=episode['physics_states'],
      rewards=episode['rewards'], success=episode['success'],
      episode_id=episode_id,
      actions=episode['actions'] if include_actions else None)
