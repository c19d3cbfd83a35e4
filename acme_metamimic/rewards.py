"""The imitation reward of eq. 2 and the two early-termination rules.

    r_imitate = beta1 * exp(-|o_image - d_image|^2) + beta2 * exp(-|o_body - d_body|^2)

Normalisation (the paper leaves it open; these are our choices):
- image term: pixels are scaled to [0, 1] and the squared distance is the
  *mean* over pixels and channels, times `image_distance_scale`; a sum over
  128x128x3 raw pixels would make the term exactly 0 for any two frames.
- body term: squared L2 distance of the `body` vectors (radians and rad/s), times
  `body_distance_scale`.
- features preset: there is no image, so the pixel term compares the `features`
  vectors (metres and quaternions): squared L2 times `feature_distance_scale`
  (100: 10 cm of brick or hand error costs a factor e).
Other environments choose their keys with `body_key` and `scene_key`; a uint8
scene entry is treated as an image.
The reward is therefore in (0, beta1 + beta2] and equals beta1 + beta2 exactly
when the observation matches the demonstration frame.
"""

import dataclasses
from typing import Mapping, Optional

import numpy as np

IMAGE = 'image'
BODY = 'body'
FEATURES = 'features'
HAND_TO_TARGET = 'hand_to_target'

Observation = Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class ImitationReward:
  """Eq. 2 with the scales documented in the module docstring."""

  beta_image: float = 15.
  beta_body: float = 2.
  image_distance_scale: float = 1.
  body_distance_scale: float = 1.
  feature_distance_scale: float = 100.
  body_key: str = BODY
  scene_key: Optional[str] = None

  def __call__(self, observation: Observation, goal: Observation) -> float:
    """Returns r(o_{t+1}, d_{t+1}); raises ValueError on non-finite input."""
    body = _squared_distance(observation, goal, self.body_key)
    scene_key = self.scene_key or (IMAGE if IMAGE in goal else FEATURES)
    if np.asarray(goal[scene_key]).dtype == np.uint8:
      o = np.asarray(observation[scene_key], np.float32) / 255.
      d = np.asarray(goal[scene_key], np.float32) / 255.
      scene = float(np.mean(np.square(o - d))) * self.image_distance_scale
    else:
      scene = _squared_distance(observation, goal, scene_key)
      scene *= self.feature_distance_scale
    reward = (self.beta_image * np.exp(-scene) +
              self.beta_body * np.exp(-self.body_distance_scale * body))
    if not np.isfinite(reward):
      raise ValueError(
          f'Imitation reward is not finite ({reward}): the observation or the '
          'demonstration frame holds NaN or inf.')
    return float(reward)

  @property
  def maximum(self) -> float:
    return self.beta_image + self.beta_body


@dataclasses.dataclass(frozen=True)
class EarlyTermination:
  """Decides when an imitation episode has drifted off its demonstration.

  Modes (appendix C.2): 'reward' ends the episode when the imitation reward falls
  below `cutoff` (0.5); 'hand_to_target' ends it when the L2 distance between
  the agent's and the demo's hand-to-target-brick vectors exceeds `threshold`
  (0.01 m); 'none' never ends it early.

  With a `final_cutoff`, the 'reward' cutoff follows a schedule (not in the
  paper): it moves linearly from `cutoff` to `final_cutoff` over an actor's
  first `cutoff_schedule_steps` env steps, then stays there. A constant
  stricter cutoff keeps episodes too short to learn from before the policy
  tracks its demos at all (docs/fidelity.md, screens 7 and 8); a schedule
  starts lenient and tightens once it does.
  """

  mode: str = 'reward'
  cutoff: float = 0.5
  threshold: float = 0.01
  final_cutoff: Optional[float] = None
  cutoff_schedule_steps: int = 0

  def cutoff_at(self, env_steps: int) -> float:
    """The 'reward' cutoff after an actor's first `env_steps` env steps."""
    if self.final_cutoff is None:
      return self.cutoff
    if self.cutoff_schedule_steps <= 0:
      return self.final_cutoff
    fraction = min(env_steps / self.cutoff_schedule_steps, 1.)
    return self.cutoff + fraction * (self.final_cutoff - self.cutoff)

  def __call__(self, observation: Observation, goal: Observation,
               imitation_reward: float, env_steps: int = 0) -> bool:
    """Whether to end the episode at this step.

    Args:
      observation: the agent's observation after the step.
      goal: the demo's frame it was to reach.
      imitation_reward: eq. 2 for the step.
      env_steps: the actor's env steps so far, this one included (the
        cutoff schedule's clock).
    """
    if self.mode == 'reward':
      return imitation_reward < self.cutoff_at(env_steps)
    if self.mode == 'hand_to_target':
      return np.sqrt(_squared_distance(observation, goal, HAND_TO_TARGET)) > (
          self.threshold)
    return False


def _squared_distance(observation: Observation, goal: Observation,
                      key: str) -> float:
  difference = (np.asarray(observation[key], np.float64) -
                np.asarray(goal[key], np.float64))
  return float(np.sum(np.square(difference)))
