"""The environment side of the imitation actor (Algorithm 1).

`ImitationEnvironment` wraps any environment whose physics state can be set.
Each episode it samples a demonstration, starts the simulator at the demo's first
physics state (or, with the demo curriculum, at a random one of its first
`curriculum_max_step`: the paper's 300, the features preset's 100;
with `peak_fraction` > 0, that share of curriculum starts among the
`peak_window` frames before the demo's first frame at its highest task
reward, for Jaco the stacked brick), and exposes the demo's next frame as
the goal:

    observation_t = {'observation': o_t, 'goal': d_{t+1}}

The reward it returns is the *task* reward; the imitation reward is computed by
`adders.ImitationRewardAdder`, which writes both. The episode ends at the demo's
last frame (a truncation) or when `rewards.EarlyTermination` says the agent
drifted off the demo.

An imitation step belongs to two MDPs, so its discount is a dict with one entry
per replay table, `{'imitation': d, 'task': d}` (Acme's adders accumulate nested
discounts key by key, like nested rewards). Early termination is the paper's
penalty for the imitation MDP, so it is a termination there (imitation discount
0). For the task MDP it is only the end of the data: the agent could have gone
on acting, so it is a truncation (task discount 1) and the task learner
bootstraps from the last observation. A terminal of the task environment itself
stays terminal in both. The demo's last frame is a truncation in both.
"""

from typing import Callable, Dict, Optional, Sequence

from acme import specs
from acme import wrappers
from acme.utils import observers
from acme_metamimic import rewards
from acme_metamimic.demonstrations import dataset
import dm_env
import numpy as np
import tree

OBSERVATION = 'observation'
GOAL = 'goal'
# Keys of the per-table discounts (and of the adder's rewards).
IMITATION = 'imitation'
TASK = 'task'

ResetToState = Callable[[dm_env.Environment, np.ndarray], dm_env.TimeStep]


def reset_to_state(environment: dm_env.Environment,
                   state: np.ndarray) -> dm_env.TimeStep:
  """Starts an episode at `state`: JacoStack and dm_control suite envs."""
  if hasattr(environment, 'reset_to_state'):
    return environment.reset_to_state(state)
  # A dm_control `control.Environment` (suite): reset, then overwrite physics.
  environment.reset()
  physics = environment.physics
  with physics.reset_context():
    physics.set_state(state)
  # The task's raw observation bypasses wrappers (e.g. Acme's
  # SinglePrecisionWrapper), so cast it to the dtypes the environment declares.
  observation = tree.map_structure(
      lambda value, spec: np.asarray(value, dtype=spec.dtype),
      environment.task.get_observation(physics),
      environment.observation_spec())
  return dm_env.restart(observation)


def get_state(environment: dm_env.Environment) -> np.ndarray:
  """The exact physics state of a JacoStack or dm_control suite env."""
  if hasattr(environment, 'get_state'):
    return environment.get_state()
  return environment.physics.get_state().copy()


def goal_conditioned_observation_spec(observation_spec):
  """The imitation observation spec: the env's spec twice, under two keys."""
  return {OBSERVATION: observation_spec, GOAL: observation_spec}


def peak_frame(demo: dataset.Demonstration) -> Optional[int]:
  """The demo's first frame at its highest task reward; None if that is 0.

  `demo.rewards[t]` follows frame t, so the frame is the reward's index + 1
  (for Jaco stack with a successful demo: the first stacked frame). Reads
  the demonstrator's task rewards, never its actions.
  """
  demo_rewards = np.asarray(demo.rewards)
  if demo_rewards.size == 0 or demo_rewards.max() <= 0.:
    return None
  return int(np.argmax(demo_rewards >= demo_rewards.max())) + 1


class ImitationEnvironment(wrappers.EnvironmentWrapper):
  """Episodes that follow one demonstration each, with goal d_{t+1} attached."""

  def __init__(self,
               environment: dm_env.Environment,
               demonstrations: Sequence[dataset.Demonstration],
               reward: rewards.ImitationReward,
               termination: rewards.EarlyTermination,
               curriculum: bool = False,
               curriculum_max_step: int = 300,
               peak_fraction: float = 0.,
               peak_window: int = 30,
               seed: Optional[int] = None,
               state_setter: ResetToState = reset_to_state):
    """Wraps `environment`.

    Args:
      environment: the environment to act in; its physics state must be
        settable through `state_setter`.
      demonstrations: the demos to sample from (observations and physics states
        only are read; actions never are).
      reward: eq. 2, used here only to decide early termination.
      termination: the early-termination rule.
      curriculum: start at a random frame among the first `curriculum_max_step`
        of the sampled demo instead of its first frame.
      curriculum_max_step: see `curriculum`.
      peak_fraction: with `curriculum`, the share of starts drawn instead
        among the `peak_window` frames before the demo's first frame at its
        highest task reward (`peak_frame`); a demo whose task reward never
        rises above 0 starts in the curriculum's range.
      peak_window: see `peak_fraction`.
      seed: seeds the demo and start-frame sampling.
      state_setter: starts an episode at a given physics state.
    """
    if not demonstrations:
      raise ValueError('ImitationEnvironment needs at least one demonstration.')
    super().__init__(environment)
    self._demonstrations = demonstrations
    self._reward = reward
    self._termination = termination
    self._curriculum = curriculum
    self._curriculum_max_step = curriculum_max_step
    if not 0. <= peak_fraction <= 1.:
      raise ValueError(f'peak_fraction must be in [0, 1], got {peak_fraction}.')
    if peak_window < 1:
      raise ValueError(f'peak_window must be >= 1, got {peak_window}.')
    self._peak_fraction = peak_fraction
    self._peak_window = peak_window
    self._rng = np.random.default_rng(seed)
    self._state_setter = state_setter
    self._demo: Optional[dataset.Demonstration] = None
    self._t = 0
    # Env steps over this environment's life: the cutoff schedule's clock.
    self._env_steps = 0
    self._metrics: Dict[str, float] = {}

  def reset(self) -> dm_env.TimeStep:
    demo = self._demonstrations[self._rng.integers(len(self._demonstrations))]
    start = 0
    if self._curriculum:
      low, high = 0, max(1, min(self._curriculum_max_step, len(demo) - 1))
      # Drawn only with a fraction, so peak_fraction=0 keeps the paper's
      # sequence of demos and starts for a seed.
      if (self._peak_fraction > 0. and
          self._rng.uniform() < self._peak_fraction):
        peak = peak_frame(demo)
        if peak is not None:
          low, high = max(0, peak - self._peak_window), peak
      start = int(self._rng.integers(low, high))
    return self.reset_to_demo(demo, start)

  def reset_to_demo(self, demo: dataset.Demonstration,
                    start: int = 0) -> dm_env.TimeStep:
    """Starts an episode that follows `demo` from its frame `start`."""
    self._demo, self._t = demo, start
    self._metrics = dict(imitation_return=0., task_return=0., steps=0,
                         early_terminated=0., demo_id=float(demo.episode_id),
                         start_frame=float(start))
    timestep = self._state_setter(self._environment,
                                  demo.physics_states[start])
    return timestep._replace(observation=self._with_goal(timestep.observation))

  def step(self, action) -> dm_env.TimeStep:
    if self._demo is None:
      return self.reset()
    timestep = self._environment.step(action)
    self._t += 1
    self._env_steps += 1
    target = self._demo.frame(self._t)
    imitation_reward = self._reward(timestep.observation, target)
    self._metrics['imitation_return'] += imitation_reward
    self._metrics['task_return'] += float(timestep.reward)
    self._metrics['steps'] += 1
    observation = self._with_goal(timestep.observation)
    task_discount = np.asarray(timestep.discount)
    if self._termination(timestep.observation, target, imitation_reward,
                         env_steps=self._env_steps):
      self._metrics['early_terminated'] = 1.
      self._demo = None
      return timestep._replace(
          step_type=dm_env.StepType.LAST, observation=observation,
          discount={IMITATION: np.zeros_like(task_discount),
                    TASK: task_discount})
    discount = {IMITATION: task_discount, TASK: task_discount}
    if self._t >= len(self._demo) - 1 or timestep.last():
      self._demo = None
      return timestep._replace(step_type=dm_env.StepType.LAST,
                               observation=observation, discount=discount)
    return timestep._replace(observation=observation, discount=discount)

  def _with_goal(self, observation):
    goal_index = min(self._t + 1, len(self._demo) - 1)
    return {OBSERVATION: observation, GOAL: self._demo.frame(goal_index)}

  @property
  def episode_metrics(self) -> Dict[str, float]:
    """Imitation and task return, length, early termination, start frame."""
    return dict(self._metrics)

  def observation_spec(self):
    return goal_conditioned_observation_spec(
        self._environment.observation_spec())

  def discount_spec(self):
    discount_spec = self._environment.discount_spec()
    return {IMITATION: discount_spec, TASK: discount_spec}


class ImitationMetricsObserver(observers.EnvLoopObserver):
  """Adds an imitation episode's metrics to Acme's EnvironmentLoop logs."""

  def __init__(self):
    self._metrics = {}

  def observe_first(self, env: dm_env.Environment,
                    timestep: dm_env.TimeStep) -> None:
    self._metrics = {}

  def observe(self, env: dm_env.Environment, timestep: dm_env.TimeStep,
              action: np.ndarray) -> None:
    self._metrics = env.episode_metrics

  def get_metrics(self) -> Dict[str, float]:
    return dict(self._metrics)


def imitation_environment_spec(
    environment_spec: specs.EnvironmentSpec) -> specs.EnvironmentSpec:
  """The spec the imitation networks and table see for an env's spec."""
  return environment_spec._replace(
      observations=goal_conditioned_observation_spec(
          environment_spec.observations))
