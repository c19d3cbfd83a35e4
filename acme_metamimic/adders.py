"""The imitation-reward adder: one imitation step, two Reverb tables.

`ImitationRewardAdder` wraps two of Acme's `NStepTransitionAdder`s on one Reverb
client. For every imitation step (o_t, a_t, o_{t+1}, r_task) whose observation
carries the goal d_{t+1}, it computes r_imitate = r(o_{t+1}, d_{t+1}) with
`rewards.ImitationReward` and writes

- to the `imitation` table: ({o_t, d_{t+1}}, a_t, r_imitate) N-step transitions;
- to the `task` table: (o_t, a_t, r_task) N-step transitions, without the goal.

This is how the task learner learns from imitation experience without ever
seeing demo actions. Task actors use a plain `NStepTransitionAdder` on the task
table (see `builder.MetaMimicBuilder.make_adder`).
"""

from typing import Optional

from acme import adders
from acme import types
from acme.adders import reverb as reverb_adders
from acme_metamimic import rewards
from acme_metamimic.environments import imitation
import dm_env
import numpy as np
import tree


class ImitationRewardAdder(adders.Adder):
  """Adds each imitation step to the imitation and the task table."""

  def __init__(self,
               imitation_adder: reverb_adders.NStepTransitionAdder,
               task_adder: reverb_adders.NStepTransitionAdder,
               reward: rewards.ImitationReward):
    """Wraps two N-step adders.

    Args:
      imitation_adder: writes goal-conditioned transitions (imitation table).
      task_adder: writes unconditional transitions (task table).
      reward: eq. 2.
    """
    self._imitation_adder = imitation_adder
    self._task_adder = task_adder
    self._reward = reward
    self._goal: Optional[types.NestedArray] = None

  def add_first(self, timestep: dm_env.TimeStep):
    _check_finite('observation', timestep.observation)
    self._goal = timestep.observation[imitation.GOAL]
    self._imitation_adder.add_first(timestep)
    self._task_adder.add_first(_without_goal(timestep))

  def add(self, action: types.NestedArray, next_timestep: dm_env.TimeStep,
          extras: types.NestedArray = ()):
    if self._goal is None:
      raise ValueError('ImitationRewardAdder.add called before add_first.')
    _check_finite('observation', next_timestep.observation)
    _check_finite('action', action)
    _check_finite('task reward', next_timestep.reward)
    observation = next_timestep.observation[imitation.OBSERVATION]
    imitation_reward = self._reward(observation, self._goal)
    reward_dtype = np.asarray(next_timestep.reward).dtype
    self._imitation_adder.add(
        action,
        next_timestep._replace(
            reward=np.asarray(imitation_reward, dtype=reward_dtype)),
        extras)
    self._task_adder.add(action, _without_goal(next_timestep), extras)
    self._goal = next_timestep.observation[imitation.GOAL]
    if next_timestep.last():
      self._goal = None

  def reset(self):
    self._goal = None
    self._imitation_adder.reset()
    self._task_adder.reset()


def _without_goal(timestep: dm_env.TimeStep) -> dm_env.TimeStep:
  return timestep._replace(observation=timestep.observation[imitation.OBSERVATION])


def _check_finite(what: str, value: types.NestedArray):
  for leaf in tree.flatten(value):
    array = np.asarray(leaf)
    if array.dtype.kind in 'fc' and not np.all(np.isfinite(array)):
      raise ValueError(f'ImitationRewardAdder: {what} holds NaN or inf; '
                       'nothing was written to replay.')
