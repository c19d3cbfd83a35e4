"""The imitation-reward adder: one imitation step, one write, two Reverb items.

`ImitationRewardAdder` is Acme's `NStepTransitionAdder` with two rewards. For
every imitation step (o_t, a_t, o_{t+1}, r_task), whose observation carries the
goal d_{t+1}, it computes r_imitate = r(o_{t+1}, d_{t+1}) with
`rewards.ImitationReward` and appends the step ONCE to a single Reverb
`TrajectoryWriter`, with reward = {'imitation': r_imitate, 'task': r_task}.
Acme's N-step machinery (windows, episode-end padding, and
`_compute_cumulative_quantities`, which handles nested rewards) is inherited
unchanged. Only `_write` is overridden: from the same columns it creates

- an `imitation` table item: ({o_t, d_{t+1}}, a_t, R_imitate, D, {o, d}_{t+n});
- a `task` table item: (o_t, a_t, R_task, D, o_{t+n}), referencing only the
  observation sub-columns, so the task learner never sees goals or demo actions.

With `hindsight_goals` the imitation item's extras also hold
{'hindsight_goal': o_{t+1}}, the observation part of the step after o_t (the
goal the action a_t actually reached), referenced from the same observation
columns: no byte more is sent. The imitation learner's inverse-dynamics loss
reads it (`MetaMimicConfig.inverse_dynamics_weight`).

The actor's own extras, if it passes any, go to the task item only (the
imitation table's signature has none of them). With
`MetaMimicConfig.task_behaviour_cloning_labels='greedy'` they are
{'greedy_action': the policy's noise-free action, 'clone_weight': 1 for the
imitation actors, 0 for the task actors} (`greedy_extras_spec`), which the
task learner's behaviour-cloning term reads.

Discounts are per table too. `ImitationEnvironment` returns
`{'imitation': d, 'task': d}`: early termination ends the imitation MDP
(discount 0) but only truncates the task MDP (discount 1), so a task item cut by
it still bootstraps with the full gamma^n. The nested discount goes through
Acme's `_compute_cumulative_quantities` key by key, like the nested reward. An
environment with one scalar discount gives both tables that discount.

Observations are therefore serialised and sent once per step, not once per
table (the earlier design wrapped two adders and paid the N-step Python
bookkeeping and the observation bytes twice; see docs/benchmarks.md). Task
actors use a plain `NStepTransitionAdder` on the task table
(`builder.MetaMimicBuilder.make_adder`).
"""

from typing import Mapping, Optional, Union

from acme import specs
from acme import types
from acme.adders.reverb import transition
import dm_env
import numpy as np
import reverb
import tree

from acme_metamimic import rewards
from acme_metamimic.environments import imitation

IMITATION_REWARD = imitation.IMITATION
TASK_REWARD = imitation.TASK
# The imitation items' extras key of o_{t+1} (`hindsight_goals`).
HINDSIGHT_GOAL = 'hindsight_goal'


def hindsight_extras_spec(environment_spec) -> dict:
  """The imitation items' extras with hindsight goals: o_{t+1}'s spec."""
  return {HINDSIGHT_GOAL: environment_spec.observations}


# The task items' extras keys of the acting policy's noise-free action and of
# the weight the task learner's behaviour-cloning term gives it
# (`MetaMimicConfig.task_behaviour_cloning_labels='greedy'`).
GREEDY_ACTION = 'greedy_action'
CLONE_WEIGHT = 'clone_weight'


def greedy_extras_spec(environment_spec) -> dict:
  """The task items' extras with greedy labels: the action's spec, a weight."""
  return {GREEDY_ACTION: environment_spec.actions,
          CLONE_WEIGHT: specs.Array((), np.float32, name=CLONE_WEIGHT)}


def greedy_extras(greedy_action: np.ndarray, clone_weight: float) -> dict:
  """The extras an actor passes its adder (`greedy_extras_spec`)."""
  return {GREEDY_ACTION: np.asarray(greedy_action, np.float32),
          CLONE_WEIGHT: np.float32(clone_weight)}


class ImitationRewardAdder(transition.NStepTransitionAdder):
  """Writes each imitation step once and adds it to both replay tables."""

  def __init__(self,
               client: reverb.Client,
               n_step: int,
               discount: Union[float, Mapping[str, float]],
               reward: rewards.ImitationReward,
               imitation_table: str,
               task_table: str,
               imitation_priority: float,
               task_priority: float = 1.,
               max_in_flight_items: int = 5,
               hindsight_goals: bool = False):
    """Creates the adder.

    Args:
      client: Reverb client of the server holding both tables.
      n_step: N of the N-step transitions (both tables).
      discount: the agent's discount, applied within the N steps: one for
        both tables, or {'imitation': ..., 'task': ...} (Acme's N-step
        machinery takes a nested discount key by key).
      reward: eq. 2, r(o_{t+1}, d_{t+1}).
      imitation_table: table of goal-conditioned, imitation-reward items.
      task_table: table of unconditional, task-reward items.
      imitation_priority: priority of new imitation items (the learner
        replaces it with the TD error; high so new items are sampled soon).
      task_priority: priority of new task items (that table samples uniformly).
      max_in_flight_items: see `reverb.TrajectoryWriter.flush`.
      hindsight_goals: the imitation items' extras are {'hindsight_goal':
        o_{t+1}}; without, they have none. The actor's extras go to the
        task items.
    """
    super().__init__(client, n_step, discount,
                     max_in_flight_items=max_in_flight_items)
    self._reward = reward
    self._tables = ((imitation_table, imitation_priority, IMITATION_REWARD),
                    (task_table, task_priority, TASK_REWARD))
    self._hindsight_goals = hindsight_goals
    self._goal: Optional[types.NestedArray] = None
    # This episode's per-step rewards and discounts ({imitation, task}),
    # indexed like the writer's history (cleared with Acme's window indices in
    # `reset`): `_write` reads its N-step window from them instead of
    # converting the writer's columns back to numpy on every step.
    self._step_rewards = []
    self._step_discounts = []

  def add_first(self, timestep: dm_env.TimeStep):
    _check_finite(observation=timestep.observation)
    super().add_first(timestep)
    self._goal = timestep.observation[imitation.GOAL]

  def add(self, action: types.NestedArray, next_timestep: dm_env.TimeStep,
          extras: types.NestedArray = ()):
    if self._goal is None:
      raise ValueError('ImitationRewardAdder.add called before add_first.')
    _check_finite(observation=next_timestep.observation, action=action,
                  task_reward=next_timestep.reward)
    task_reward = np.asarray(next_timestep.reward)
    imitation_reward = self._reward(
        next_timestep.observation[imitation.OBSERVATION], self._goal)
    self._goal = (None if next_timestep.last() else
                  next_timestep.observation[imitation.GOAL])
    discount = next_timestep.discount
    if not isinstance(discount, Mapping):
      discount = {IMITATION_REWARD: discount, TASK_REWARD: discount}
    reward = {IMITATION_REWARD: np.asarray(imitation_reward, task_reward.dtype),
              TASK_REWARD: task_reward}
    discount = {IMITATION_REWARD: np.asarray(discount[IMITATION_REWARD]),
                TASK_REWARD: np.asarray(discount[TASK_REWARD])}
    self._step_rewards.append(reward)
    self._step_discounts.append(discount)
    super().add(action, next_timestep._replace(reward=reward,
                                               discount=discount), extras)

  def reset(self):
    super().reset()
    self._goal = None
    self._step_rewards, self._step_discounts = [], []

  def _write(self):
    # Acme's NStepTransitionAdder._write, creating one item per table from the
    # same history instead of one transition for all tables.
    history = self._writer.history
    first = lambda column: column[self._first_idx]
    observation, action = tree.map_structure(
        first, (history['observation'], history['action']))
    next_observation = tree.map_structure(lambda column: column[self._last_idx],
                                          history['observation'])
    extras = (tree.map_structure(first, history['extras'])
              if 'extras' in history else ())
    # What Acme reads as history['reward'][first:last].numpy() (and the same
    # for discounts), from the values `add` kept.
    window = slice(self._first_idx, self._last_idx)
    step_rewards, step_discounts = (
        {key: np.stack([step[key] for step in steps[window]])
         for key in (IMITATION_REWARD, TASK_REWARD)}
        for steps in (self._step_rewards, self._step_discounts))
    n_step_return, total_discount = self._compute_cumulative_quantities(
        step_rewards, step_discounts)
    self._writer.append(
        dict(n_step_return=n_step_return, total_discount=total_discount),
        partial_step=self._writer.episode_steps <= self._last_idx)
    if 'n_step_return' not in history:
      # First write of this writer: the append above created these columns.
      # Afterwards `history` holds the writer's live columns, which already
      # reference the appended step, so it is not rebuilt on every write.
      history = self._writer.history
    for table, priority, reward_key in self._tables:
      if reward_key == TASK_REWARD:
        item_extras = extras
        item_observation = observation[imitation.OBSERVATION]
        item_next_observation = next_observation[imitation.OBSERVATION]
      else:
        item_extras = ()
        item_observation, item_next_observation = observation, next_observation
        if self._hindsight_goals:
          # o_{t+1}: always written (first < last), whatever n.
          item_extras = {HINDSIGHT_GOAL: tree.map_structure(
              lambda column: column[self._first_idx + 1],
              history['observation'][imitation.OBSERVATION])}
      self._writer.create_item(
          table=table, priority=priority,
          trajectory=types.Transition(
              observation=item_observation,
              action=action,
              reward=history['n_step_return'][reward_key][-1],
              discount=history['total_discount'][reward_key][-1],
              next_observation=item_next_observation,
              extras=item_extras))
    self._writer.flush(self._max_in_flight_items)


def _check_finite(**named_values: types.NestedArray):
  """Raises, naming the input, if any float leaf holds NaN or inf.

  One vectorised check over all leaves (the common, finite case); only on
  failure are the inputs checked one by one to name the culprit.
  """
  leaves = [np.asarray(leaf) for leaf in tree.flatten(named_values)]
  floats = [leaf.ravel() for leaf in leaves if leaf.dtype.kind in 'fc']
  if not floats or np.isfinite(np.concatenate(floats)).all():
    return
  for name, value in named_values.items():
    if not all(np.isfinite(np.asarray(leaf)).all()
               for leaf in tree.flatten(value)
               if np.asarray(leaf).dtype.kind in 'fc'):
      raise ValueError(f'ImitationRewardAdder: {name.replace("_", " ")} holds '
                       'NaN or inf; nothing was written to replay.')
