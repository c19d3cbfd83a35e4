"""Whether an imitation policy can track: a ceiling, probes and quick fits.

Issue 32 ("Imitation that tracks") measured two things this module makes
repeatable:

- A hand-written joint-space tracker that sees exactly the imitation policy's
  inputs (`joint_tracker_policy`: command the joint velocity that closes
  `gain` = 0.5 of the joint-position gap to the goal in one control step)
  scores, by `evaluation.evaluate_imitation` (no early termination, the first
  10 demos of each split), 8.63 eq. 2 reward per step on held-out demos and
  73.5 % of their task reward (training demos 9.43 and 100.4 %), where the
  learned features policy scored 1.1-1.2 and 0.1-2.6 % on held-out demos
  after 60 minutes (README). The features preset's inputs are enough to
  imitate; the learning is what falls short. The tracker
  is a diagnostic ceiling only: no training path and no learned policy uses
  it.
- The learned critic gives its policy no usable direction. At states along
  held-out demos its ranking of candidate actions agrees with the true
  one-step eq. 2 reward at a rank correlation of 0.25, its action gradient
  points along the true reward gradient at a cosine of 0.05, and the policy's
  action barely moves when the goal does.

Every probe starts at the exact physics state of a held-out demo frame t
(`ImitationEnvironment.reset_to_demo`, so the goal is the demo's frame t + 1),
and one that tries several actions restores that state before each, so the
candidates differ only by their action. "True" numbers come from the
simulator and `MetaMimicBuilder.make_imitation_reward` (eq. 2 of the next
observation against the goal), never from the networks.

- `score_candidates` with `critic_ranking`: does the critic order actions as
  the reward does? For K random actions plus the policy's and the tracker's,
  the Spearman correlation of the critic's expected Q with the true one-step
  eq. 2 reward, and with the true discounted return of the action followed by
  H steps of the policy (what Q estimates, up to the horizon), averaged over
  states. A critic the DPG update can learn from ranks well; 0 is chance.
- `score_candidates` with `policy_vs_tracker`: which of the two actions the
  critic prefers, and which the reward prefers. A critic that prefers the
  policy's action where the reward prefers the tracker's holds the policy
  where it is.
- `critic_support`: where the policy's Q sits in the critic's support; a
  critic piled on its top atom cannot tell actions apart.
- `gradient_cosine`: the DPG update moves the action along dQ/da; the cosine
  between that gradient at the policy's action and the finite-difference
  gradient of the true one-step reward says whether the move improves
  tracking (1), does nothing useful (0) or hurts (-1). The same against the
  short-horizon return's gradient, and the two true gradients against each
  other: the ceiling of the one-step cosine for a critic of the return.
- `goal_sensitivity`: d action / d goal joint positions by finite differences
  (arm and fingers apart; each action's own joint, and the other joints).
  A policy that imitates must respond to the goal; the tracker's response is
  gain / control timestep, rescaled to the action range, on its own joint.
- `fit_critic_to_one_step_reward` (`diagnose(fit_critic_steps=...)`): fits
  a fresh critic to the one-step reward alone, so that the probes above say
  what an encoding can learn at all, in minutes and without RL.
- `fit_policy_by_inverse_dynamics` (`diagnose(fit_inverse_dynamics_steps=
  ...)`): collects the policy's own noisy training episodes
  (`collect_exploration_transitions`: the config's noise, early termination
  and curriculum, as an imitation actor would) and fits the policy head to
  the action that took each o_t to its o_{t+1} (the loss of
  `MetaMimicConfig.inverse_dynamics_weight`), then evaluates that policy
  on the held-out demos: what hindsight inverse dynamics can learn from
  such data and encoding, in about a minute. On untrained networks it ranked
  the issue-32 levers (docs/fidelity.md, "Issue 32, session 18"): with goal
  deltas x10 and the skip, 8.9 eq. 2 reward per step held out at noise 0.5
  arm / 0.3 fingers, 9.3 at 0.3 everywhere, 0.8 at 0.2 / 0.02; with raw
  goals 0.9-1.0.
- `exploration_episode_lengths`: the training imitation environment (the
  config's early termination and curriculum) with the config's Gaussian
  exploration noise around the policy and around the tracker. Short episodes
  mean little data near the demos; the tracker's length says how long they
  could be with the same noise.

`diagnose` runs them all on a run's restored imitation networks (or untrained
ones) and returns one JSON-able dict; launch/diagnose.py is its command line.
"""

import dataclasses
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from acme import specs
from acme.tf import losses
from acme.tf import utils as tf2_utils
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic.demonstrations import dataset
from acme_metamimic.environments import imitation
from acme_metamimic.environments import jaco_stack
import numpy as np
from scipy import stats
import sonnet as snt
import tensorflow as tf

Policy = evaluation.Policy
Observation = Dict[str, Any]
# (imitation observation, action) -> the critic's expected Q.
Critic = Callable[[Observation, np.ndarray], float]
# (imitation observation, action) -> dQ/da.
CriticGradient = Callable[[Observation, np.ndarray], np.ndarray]
# One probed state: a demo and the frame t the agent starts at (goal t + 1).
DemoState = Tuple[dataset.Demonstration, int]

TRACKER_GAIN = 0.5
# The Jaco's action: 6 arm joint velocities, then 3 finger velocities.
ARM = slice(0, 6)
FINGERS = slice(6, 9)


def _jaco_stack(environment) -> jaco_stack.JacoStack:
  """The `JacoStack` under any number of wrappers."""
  while not isinstance(environment, jaco_stack.JacoStack):
    if not hasattr(environment, 'environment'):
      raise ValueError(f'{type(environment).__name__} wraps no JacoStack.')
    environment = environment.environment
  return environment


def joint_tracker_policy(environment, gain: float = TRACKER_GAIN) -> Policy:
  """A hand-written tracker: the features preset's diagnostic ceiling.

  It sees exactly what the imitation policy sees, the imitation observation
  {'observation': o_t, 'goal': d_{t+1}}, and commands for each joint the
  velocity that closes `gain` of the gap between the goal's joint position
  and its own in one control step, rescaled from the actuator's range to
  the action's [-1, 1] (the inverse of `JacoStack.rescale_action`) and
  clipped there:

      a = clip(rescale(gain * (d_{t+1}.body[:9] - o_t.body[:9]) / dt))

  It never enters training or a learned policy; it measures how well the
  policy's inputs allow imitation (the module docstring).

  Args:
    environment: a `JacoStack`, or a wrapper of one (its control timestep
      and actuator ranges are read).
    gain: fraction of the joint-position gap closed per control step.
  """
  jaco = _jaco_stack(environment)
  size = jaco.action_spec().shape[0]
  low = jaco.rescale_action(-np.ones(size))
  high = jaco.rescale_action(np.ones(size))
  timestep = jaco.config.control_timestep

  def policy(observation: Observation) -> np.ndarray:
    goal = np.asarray(observation[imitation.GOAL]['body'][:size], np.float64)
    position = np.asarray(
        observation[imitation.OBSERVATION]['body'][:size], np.float64)
    velocity = gain * (goal - position) / timestep
    action = 2. * (velocity - low) / (high - low) - 1.
    return np.clip(action, -1., 1.).astype(np.float32)

  return policy


def make_network_critic(networks) -> Tuple[Critic, CriticGradient]:
  """A D4PG critic's expected Q and dQ/da, one observation at a time.

  Q is the mean of the critic's categorical distribution (softmax of its
  logits times the atoms, `DiscreteValuedDistribution.mean`) of the
  observation network's embedding, as the learner computes it.
  """

  @tf.function
  def q_and_gradient(observation, action):
    with tf.GradientTape() as tape:
      tape.watch(action)
      embedding = networks.observation_network(observation)
      q = networks.critic_network(embedding, action).mean()
    return q, tape.gradient(q, action)

  def evaluate(observation, action):
    q, gradient = q_and_gradient(
        tf2_utils.add_batch_dim(observation),
        tf2_utils.add_batch_dim(np.asarray(action, np.float32)))
    return float(q.numpy()[0]), gradient.numpy()[0]

  return (lambda o, a: evaluate(o, a)[0]), (lambda o, a: evaluate(o, a)[1])


def restore_critic_network(networks, workdir: str, label: str,
                           networks_kind: str = 'target'):
  """Restores a learner checkpoint's critic of `networks_kind`.

  The sibling of `evaluation.restore_policy_networks`, which restores the
  policy and observation networks of the same kind (the critic's input is
  that observation network's embedding) from the same checkpoint.
  """
  evaluation.restore_learner_entries(workdir, label, {
      evaluation.learner_checkpoint_key('critic', networks_kind):
          networks.critic_network})


# States and true rewards (need MuJoCo).


def sample_demo_states(demos: Sequence[dataset.Demonstration], num_states: int,
                       horizon: int, rng: np.random.Generator
                       ) -> List[DemoState]:
  """`num_states` frames, demos in turn, each leaving `horizon` + 1 steps."""
  states = []
  for i in range(num_states):
    demo = demos[i % len(demos)]
    last_start = len(demo) - 2 - horizon
    if last_start < 0:
      raise ValueError(f'Demo {demo.episode_id} has {len(demo)} frames: too '
                       f'short for a horizon of {horizon}.')
    states.append((demo, int(rng.integers(last_start + 1))))
  return states


def rollout_rewards(environment: imitation.ImitationEnvironment,
                    state: DemoState, action: np.ndarray,
                    reward: Callable[[Observation, Observation], float],
                    policy: Optional[Policy] = None,
                    horizon: int = 0) -> np.ndarray:
  """Eq. 2 of `action` from `state`, then of `horizon` steps of `policy`.

  Returns [horizon + 1] rewards, each of the observation after a step
  against the demo frame it was to reach.
  """
  demo, t = state
  timestep = environment.reset_to_demo(demo, t)
  rewards = []
  for k in range(horizon + 1):
    timestep = environment.step(action)
    rewards.append(reward(timestep.observation[imitation.OBSERVATION],
                          demo.frame(t + k + 1)))
    if k < horizon:
      action = policy(timestep.observation)
  return np.asarray(rewards)


def finite_difference_gradient(function: Callable[[np.ndarray], Any],
                               action: np.ndarray,
                               epsilon: float) -> np.ndarray:
  """Central differences of `function` in each action dimension.

  Each perturbed action stays in [-1, 1], where the environment would clip
  it, and the difference is divided by the step actually taken. `function`
  returns a float ([A] gradient) or an array of shape S ([*S, A]: one
  gradient per entry, every entry from the same perturbed steps).
  """
  action = np.asarray(action, np.float32)
  gradient = None
  for i in range(action.size):
    plus, minus = action.copy(), action.copy()
    plus[i] = min(action[i] + epsilon, 1.)
    minus[i] = max(action[i] - epsilon, -1.)
    difference = (np.asarray(function(plus), np.float64) -
                  np.asarray(function(minus), np.float64)) / (
                      float(plus[i]) - float(minus[i]))
    if gradient is None:
      gradient = np.zeros(difference.shape + action.shape, np.float64)
    gradient[..., i] = difference
  return gradient


def spearman(x: np.ndarray, y: np.ndarray) -> float:
  """Rank correlation; NaN when either side is constant (no ranking)."""
  if np.ptp(x) == 0 or np.ptp(y) == 0:
    return float('nan')
  return float(stats.spearmanr(x, y)[0])


def _cosine(u: np.ndarray, v: np.ndarray) -> float:
  norms = np.linalg.norm(u) * np.linalg.norm(v)
  return float(np.dot(u, v) / norms) if norms > 0 else float('nan')


def _nanmean(values) -> float:
  values = np.asarray(values, np.float64)
  return float(np.nanmean(values)) if np.any(np.isfinite(values)) else (
      float('nan'))


# Probes.


@dataclasses.dataclass
class CandidateScores:
  """One state's candidate actions, scored by the critic and the simulator.

  Attributes:
    q: [C] the critic's expected Q of each candidate.
    rewards: [C] true one-step eq. 2 reward.
    returns: [C] true discounted return: the candidate, then H policy steps.
  Candidate 0 is the policy's action, 1 the tracker's, the rest random.
  """

  q: np.ndarray
  rewards: np.ndarray
  returns: np.ndarray


POLICY_CANDIDATE = 0
TRACKER_CANDIDATE = 1


def score_candidates(environment: imitation.ImitationEnvironment,
                     states: Sequence[DemoState], critic: Critic,
                     policy: Policy, tracker: Policy,
                     reward: Callable[[Observation, Observation], float],
                     num_candidates: int, horizon: int, discount: float,
                     rng: np.random.Generator) -> List[CandidateScores]:
  """Scores the policy's, the tracker's and `num_candidates` random actions.

  Args:
    environment: an imitation environment over the demos of `states`, built
      without early termination (every candidate runs its whole horizon).
    states: where to probe.
    critic: (observation, action) -> Q.
    policy: the imitation policy; it also acts for the `horizon` steps.
    tracker: `joint_tracker_policy`.
    reward: eq. 2.
    num_candidates: random actions, uniform in [-1, 1].
    horizon: policy steps after each candidate for the return.
    discount: the return's discount per step.
    rng: draws the random actions.
  """
  scores = []
  weights = discount ** np.arange(horizon + 1)
  size = environment.action_spec().shape[0]
  for state in states:
    observation = environment.reset_to_demo(*state).observation
    candidates = [policy(observation), tracker(observation)] + list(
        rng.uniform(-1., 1., (num_candidates, size)).astype(np.float32))
    q, rewards, returns = [], [], []
    for action in candidates:
      q.append(critic(observation, action))
      path = rollout_rewards(environment, state, action, reward, policy,
                             horizon)
      rewards.append(path[0])
      returns.append(float(np.dot(weights, path)))
    scores.append(CandidateScores(np.asarray(q), np.asarray(rewards),
                                  np.asarray(returns)))
  return scores


def critic_ranking(scores: Sequence[CandidateScores]) -> Dict[str, float]:
  """Mean Spearman correlations over states of Q with the truth.

  Returns:
    q_vs_reward: Q against the one-step eq. 2 reward (1: same order).
    q_vs_return: Q against the short-horizon return.
    reward_vs_return: one-step reward against the return: how far the
      one-step order is the longer one's (a reference, not the critic's).
    num_states: states scored; ranked_states: those where Q was not constant.
  """
  return dict(
      q_vs_reward=_nanmean([spearman(s.q, s.rewards) for s in scores]),
      q_vs_return=_nanmean([spearman(s.q, s.returns) for s in scores]),
      reward_vs_return=_nanmean([spearman(s.rewards, s.returns)
                                for s in scores]),
      num_states=float(len(scores)),
      ranked_states=float(sum(np.ptp(s.q) > 0 for s in scores)))


def policy_vs_tracker(scores: Sequence[CandidateScores]) -> Dict[str, float]:
  """How often the critic, and the truth, prefer the policy's action.

  Returns:
    q_prefers_policy: fraction of states where Q(policy) > Q(tracker).
    reward_prefers_policy: the same for the one-step eq. 2 reward.
    return_prefers_policy: the same for the short-horizon return.
    policy_reward / tracker_reward: mean one-step eq. 2 of each action.
    policy_q / tracker_q: mean Q of each action.
  """
  def prefers(values):
    return float(np.mean([v[POLICY_CANDIDATE] > v[TRACKER_CANDIDATE]
                          for v in values]))

  def mean(values, index):
    return float(np.mean([v[index] for v in values]))

  qs = [s.q for s in scores]
  rewards = [s.rewards for s in scores]
  return dict(
      q_prefers_policy=prefers(qs),
      reward_prefers_policy=prefers(rewards),
      return_prefers_policy=prefers([s.returns for s in scores]),
      policy_reward=mean(rewards, POLICY_CANDIDATE),
      tracker_reward=mean(rewards, TRACKER_CANDIDATE),
      policy_q=mean(qs, POLICY_CANDIDATE),
      tracker_q=mean(qs, TRACKER_CANDIDATE))


def critic_support(scores: Sequence[CandidateScores], vmin: float,
                   vmax: float) -> Dict[str, float]:
  """Where the probed Q values sit in the critic's support [vmin, vmax].

  A categorical critic whose targets pass Vmax piles its mass on the top atom
  and its Q stops moving with the action: on the 60-minute run with
  hindsight inverse dynamics the policy's Q was 97 of Vmax 100 at held-out
  states while a tracking policy earns ~15 eq. 2 per step, ~1,500 at
  discount 0.99 (docs/fidelity.md, "Session 19").

  Returns:
    vmax: the support's top.
    policy_q_fraction: mean (Q(pi(o)) - vmin) / (vmax - vmin) over states.
    policy_q_near_vmax: share of states where that fraction is >= 0.9.
    q_spread_fraction: mean over states of the candidates' Q range, as a
      fraction of the support.
  """
  width = float(vmax - vmin)
  policy = np.asarray([(s.q[POLICY_CANDIDATE] - vmin) / width
                       for s in scores])
  return dict(vmax=float(vmax), policy_q_fraction=float(np.mean(policy)),
              policy_q_near_vmax=float(np.mean(policy >= 0.9)),
              q_spread_fraction=float(np.mean([np.ptp(s.q) / width
                                               for s in scores])))


def gradient_cosine(environment: imitation.ImitationEnvironment,
                    states: Sequence[DemoState],
                    critic_gradient: CriticGradient, policy: Policy,
                    reward: Callable[[Observation, Observation], float],
                    epsilon: float = 0.05, horizon: int = 0,
                    discount: float = 1.) -> Dict[str, float]:
  """Cosine of dQ/da with the true one-step reward's gradient, at pi(o).

  The true gradients are `finite_difference_gradient`s, every perturbed
  action stepped from the same restored state: of the one-step eq. 2 reward,
  and of the discounted return of that action followed by `horizon` steps
  of `policy` (what Q estimates, up to the horizon). The one-step gradient
  is issue 32's yardstick; how far it points along the return's gradient
  (`reward_vs_return_cosine`) says how far a critic of the return can
  agree with it at all. At a 60-minute imitation checkpoint (41,740
  learner steps, docs/fidelity.md "Session 31") that reference was 0.25
  over 10 steps and 0.11 over 30 (rank correlations 0.66 and 0.45): a
  policy that tracks makes up for a perturbed action over the next steps,
  so a critic of the return cannot meet a bar set on the one-step reward.

  Returns:
    cosine: mean over states of cos(dQ/da, one-step gradient);
      cosine_median; num_states.
    return_cosine: mean over states of cos(dQ/da, the return's gradient).
    reward_vs_return_cosine: mean of cos(one-step gradient, the return's
      gradient), a reference (truth against truth), not the critic's.
    critic_gradient_norm / reward_gradient_norm / return_gradient_norm:
      mean norms.
  """
  weights = discount ** np.arange(horizon + 1)
  cosines, return_cosines, references = [], [], []
  critic_norms, reward_norms, return_norms = [], [], []
  for state in states:
    observation = environment.reset_to_demo(*state).observation
    action = policy(observation)

    def reward_and_return(a, state=state):
      path = rollout_rewards(environment, state, a, reward, policy, horizon)
      return np.asarray([path[0], np.dot(weights, path)])

    truth, return_truth = finite_difference_gradient(reward_and_return,
                                                     action, epsilon)
    estimate = np.asarray(critic_gradient(observation, action), np.float64)
    cosines.append(_cosine(estimate, truth))
    return_cosines.append(_cosine(estimate, return_truth))
    references.append(_cosine(truth, return_truth))
    critic_norms.append(np.linalg.norm(estimate))
    reward_norms.append(np.linalg.norm(truth))
    return_norms.append(np.linalg.norm(return_truth))
  return dict(cosine=_nanmean(cosines),
              cosine_median=float(np.nanmedian(cosines)),
              return_cosine=_nanmean(return_cosines),
              reward_vs_return_cosine=_nanmean(references),
              critic_gradient_norm=float(np.mean(critic_norms)),
              reward_gradient_norm=float(np.mean(reward_norms)),
              return_gradient_norm=float(np.mean(return_norms)),
              horizon=float(horizon),
              num_states=float(len(states)))


def goal_jacobian(policy: Policy, observation: Observation,
                  delta: float) -> np.ndarray:
  """[A, 9] d action_i / d goal joint position j, central differences."""
  joints = FINGERS.stop
  jacobian = np.zeros((np.asarray(policy(observation)).shape[0], joints))
  for j in range(joints):
    actions = []
    steps = []
    for sign in (1., -1.):
      body = np.array(observation[imitation.GOAL]['body'], copy=True)
      position = body[j]
      body[j] = position + body.dtype.type(sign * delta)
      steps.append(float(body[j]) - float(position))
      goal = dict(observation[imitation.GOAL], body=body)
      actions.append(np.asarray(
          policy({**observation, imitation.GOAL: goal}), np.float64))
    jacobian[:, j] = (actions[0] - actions[1]) / (steps[0] - steps[1])
  return jacobian


def goal_sensitivity(observations: Sequence[Observation], policy: Policy,
                     delta: float = 1e-3) -> Dict[str, float]:
  """Mean |d action / d goal joint position| over `observations`.

  Returns:
    arm_own_joint / fingers_own_joint: mean |d a_i / d goal_i| over the arm's
      (fingers') joints i: how each command follows its own joint's goal.
    arm_other_joints / fingers_other_joints: mean |d a_i / d goal_j|, j != i.
  """
  magnitude = np.abs(np.stack([goal_jacobian(policy, o, delta)
                               for o in observations]))
  own = np.diagonal(magnitude, axis1=1, axis2=2)
  other = ~np.eye(*magnitude.shape[1:], dtype=bool)
  return dict(
      arm_own_joint=float(np.mean(own[:, ARM])),
      fingers_own_joint=float(np.mean(own[:, FINGERS])),
      arm_other_joints=float(np.mean(magnitude[:, ARM][:, other[ARM]])),
      fingers_other_joints=float(np.mean(
          magnitude[:, FINGERS][:, other[FINGERS]])))


def exploration_episode_lengths(environment: imitation.ImitationEnvironment,
                                policy: Policy, sigma: Any,
                                num_episodes: int,
                                rng: np.random.Generator) -> Dict[str, float]:
  """Episodes of `policy` plus the actors' clipped Gaussian noise.

  The noise is what the imitation actors add (`acme.tf.networks.
  ClippedGaussian`, then clipping to [-1, 1]).

  Returns:
    mean_length / median_length: steps per episode.
    early_termination_rate: fraction of episodes ended by early termination.
    imitation_reward_per_step: mean eq. 2 per step taken.
  """
  lengths, terminated, per_step = [], [], []
  for _ in range(num_episodes):
    timestep = environment.reset()
    while not timestep.last():
      action = policy(timestep.observation)
      noisy = np.clip(action + rng.normal(0., sigma, np.shape(action)), -1., 1.)
      timestep = environment.step(noisy.astype(np.float32))
    metrics = environment.episode_metrics
    lengths.append(metrics['steps'])
    terminated.append(metrics['early_terminated'])
    per_step.append(metrics['imitation_return'] / max(metrics['steps'], 1))
  return dict(mean_length=float(np.mean(lengths)),
              median_length=float(np.median(lengths)),
              early_termination_rate=float(np.mean(terminated)),
              imitation_reward_per_step=float(np.mean(per_step)),
              num_episodes=float(num_episodes))


# The whole set.


def collect_one_step_transitions(
    environment: imitation.ImitationEnvironment,
    demos: Sequence[dataset.Demonstration], tracker: Policy,
    reward: Callable[[Observation, Observation], float],
    num_transitions: int, rng: np.random.Generator):
  """(observations, actions, one-step eq. 2 rewards) around the demos.

  Each transition starts at a random demo frame, after 0 to 3 steps of the
  tracker plus noise 0.3 (so that states lie near the demo, not only on
  it); its action is uniform in [-1, 1] or the tracker's plus noise 0.2,
  half each (so that good actions are in the data, as they would be in a
  learning agent's replay). The environment must not end episodes early.
  """
  size = environment.action_spec().shape[0]
  noisy = lambda o, scale: np.clip(
      tracker(o) + rng.normal(0., scale, size), -1., 1.).astype(np.float32)
  observations, actions, rewards = [], [], []
  while len(rewards) < num_transitions:
    demo = demos[rng.integers(len(demos))]
    detour = int(rng.integers(4))
    t = int(rng.integers(len(demo) - 1 - detour))
    timestep = environment.reset_to_demo(demo, t)
    for _ in range(detour):
      timestep = environment.step(noisy(timestep.observation, 0.3))
    action = (rng.uniform(-1., 1., size).astype(np.float32)
              if rng.random() < 0.5 else noisy(timestep.observation, 0.2))
    observations.append(timestep.observation)
    step = environment.step(action)
    actions.append(action)
    rewards.append(reward(step.observation[imitation.OBSERVATION],
                          demo.frame(t + detour + 1)))
  stacked = tf.nest.map_structure(lambda *x: np.stack(x), *observations)
  return stacked, np.stack(actions), np.asarray(rewards, np.float32)


def collect_exploration_transitions(
    environment: imitation.ImitationEnvironment, policy: Policy, sigma: Any,
    num_transitions: int, rng: np.random.Generator):
  """(o_t, a_t, o_{t+1}) of `policy` plus the actors' clipped noise.

  Whole training episodes (`environment` as the imitation actors have it:
  early termination and curriculum) until `num_transitions` steps; o_t is
  the imitation observation (goal included), o_{t+1} its observation part,
  the goal a hindsight inverse-dynamics loss reaches for.

  Returns:
    (observations, actions, next observations, mean episode length).
  """
  observations, actions, next_observations, lengths = [], [], [], []
  while len(actions) < num_transitions:
    timestep = environment.reset()
    length = 0
    while not timestep.last():
      action = policy(timestep.observation)
      noisy = np.clip(action + rng.normal(0., sigma, np.shape(action)), -1.,
                      1.).astype(np.float32)
      observations.append(timestep.observation)
      timestep = environment.step(noisy)
      actions.append(noisy)
      next_observations.append(timestep.observation[imitation.OBSERVATION])
      length += 1
    lengths.append(length)
  stack = lambda nests: tf.nest.map_structure(lambda *x: np.stack(x), *nests)
  return (stack(observations), np.stack(actions), stack(next_observations),
          float(np.mean(lengths)))


def fit_policy_by_inverse_dynamics(networks, transitions, steps: int,
                                   learning_rate: float, batch_size: int,
                                   seed: int) -> Dict[str, float]:
  """Trains the policy head on hindsight inverse dynamics alone.

  The imitation learner's `inverse_dynamics_weight` loss without the DPG
  term: |pi(o_t, g = o_{t+1}) - a_t|^2 summed over action dimensions, on the
  policy network's variables only (the learner leaves the observation
  network to the critic). Returns the first and last hundred steps' mean
  loss.
  """
  observations, actions, next_observations, _ = transitions
  hindsight = {imitation.OBSERVATION: observations[imitation.OBSERVATION],
               imitation.GOAL: next_observations}
  first, last = regress_policy(
      networks, networks.policy_network.trainable_variables, hindsight,
      actions, steps, learning_rate, batch_size, seed)
  return dict(steps=steps, transitions=len(actions),
              mean_episode_length=transitions[3], first_loss=first,
              last_loss=last)


def regress_policy(networks, variables, observations, actions, steps: int,
                   learning_rate: float, batch_size: int,
                   seed: int) -> Tuple[float, float]:
  """Fits `variables` so that policy(observation network(o)) predicts a.

  Squared error summed over action dimensions, averaged over minibatches of
  `batch_size`, Adam at `learning_rate`, `steps` steps. Returns the mean
  loss of the first and of the last hundred steps.
  """
  rng = np.random.default_rng(seed)
  optimizer = snt.optimizers.Adam(learning_rate)

  @tf.function
  def step(observation, action):
    with tf.GradientTape() as tape:
      predicted = networks.policy_network(
          networks.observation_network(observation))
      loss = tf.reduce_mean(tf.reduce_sum(tf.square(predicted - action), -1))
    optimizer.apply(tape.gradient(loss, variables), variables)
    return loss

  return minibatch_losses(step, (observations, actions), len(actions), steps,
                          batch_size, rng)


def minibatch_losses(step, inputs, size: int, steps: int, batch_size: int,
                     rng: np.random.Generator) -> Tuple[float, float]:
  """`steps` calls of `step` on random batches of `inputs`' `size` rows.

  Returns the mean loss of the first and of the last hundred steps.
  """
  history = []
  for _ in range(steps):
    index = rng.integers(size, size=batch_size)
    history.append(float(step(*tf.nest.map_structure(lambda x: x[index],
                                                     inputs))))
  window = min(100, steps)
  return float(np.mean(history[:window])), float(np.mean(history[-window:]))


def fit_critic_to_one_step_reward(networks, transitions, steps: int,
                                  learning_rate: float, batch_size: int,
                                  seed: int) -> Dict[str, float]:
  """Trains observation network and critic on the one-step reward alone.

  The D4PG learner's categorical loss (`acme.tf.losses.categorical`) with
  discount 0, so the target is the reward itself: whether a critic of this
  encoding can represent the action's effect on the next reward at all, in
  minutes and without RL. The issue-32 audit fitted the paper's encoding
  this way for 24,000 steps and its ranking of actions correlated 0.21 with
  the reward. Returns the first and last hundred steps' mean loss.
  """
  observations, actions, rewards = transitions
  rng = np.random.default_rng(seed)
  optimizer = snt.optimizers.Adam(learning_rate)
  variables = (networks.observation_network.trainable_variables +
               networks.critic_network.trainable_variables)

  @tf.function
  def step(observation, action, reward):
    with tf.GradientTape() as tape:
      q = networks.critic_network(networks.observation_network(observation),
                                  action)
      loss = tf.reduce_mean(losses.categorical(
          q, reward, tf.zeros_like(reward), q))
    optimizer.apply(tape.gradient(loss, variables), variables)
    return loss

  first, last = minibatch_losses(
      step, (observations, actions, rewards), len(rewards), steps,
      batch_size, rng)
  return dict(steps=steps, transitions=len(rewards), first_loss=first,
              last_loss=last, reward_std=float(np.std(rewards)))


def timed(seconds: Dict[str, float], name: str, function, *args, **kwargs):
  """Calls `function`, recording its wall time in seconds[name]."""
  start = time.time()
  result = function(*args, **kwargs)
  seconds[name] = round(time.time() - start, 2)
  return result


def diagnose(workdir: Optional[str], preset: str,
             demos: Sequence[dataset.Demonstration],
             config: config_lib.MetaMimicConfig, num_states: int = 20,
             num_candidates: int = 16, horizon: int = 10, seed: int = 0,
             train_demos: Optional[Sequence[dataset.Demonstration]] = None,
             exploration_episodes: int = 20, networks_kind: str = 'target',
             epsilon: float = 0.05, goal_delta: float = 1e-3,
             fit_critic_steps: int = 0, fit_transitions: int = 4000,
             fit_learning_rate: float = 1e-3,
             fit_inverse_dynamics_steps: int = 0) -> Dict[str, Any]:
  """Every probe on a run's imitation networks (untrained if no workdir).

  Args:
    workdir: a run_local workdir whose imitation learner checkpoint holds the
      networks (`networks_kind`: its target or online ones); None: fresh
      networks. `config` must carry the run's network fields
      (`evaluation.network_overrides`).
    preset: the preset the networks and environment are built with.
    demos: held-out demos to probe along.
    config: gives eq. 2, the discount, the exploration noise, the early
      termination and the curriculum.
    num_states: states probed (demos in turn, a random frame of each).
    num_candidates: random candidate actions per state.
    horizon: policy steps after a candidate for the short-horizon return.
    seed: seeds the environment, the states, the candidates and the noise.
    train_demos: demos of the exploration episodes (default `demos`).
    exploration_episodes: episodes per policy in the exploration probe.
    networks_kind: see `evaluation.CHECKPOINT_NETWORKS`.
    epsilon: the action step of the reward's finite-difference gradient.
    goal_delta: the goal step of the goal sensitivity.
    fit_critic_steps: if > 0, first fit the critic (and observation network)
      to the one-step reward of `fit_transitions` transitions around
      `train_demos` (`fit_critic_to_one_step_reward`), so that the ranking
      probes say what this encoding can learn, not what a run learned.
    fit_transitions: see `fit_critic_steps`.
    fit_learning_rate: Adam's learning rate for that fit (and the next).
    fit_inverse_dynamics_steps: if > 0, first fit the policy by hindsight
      inverse dynamics on `fit_transitions` steps of its own noisy training
      episodes on `train_demos` (`fit_policy_by_inverse_dynamics`); the
      result then also holds the fitted policy's imitation of `demos`
      ('inverse_dynamics_imitation', `evaluation.evaluate_imitation`).

  Returns:
    {'settings', 'source', 'critic_ranking', 'policy_vs_tracker',
    'critic_support', 'gradient_cosine',
    'goal_sensitivity': {'policy', 'tracker'},
    'exploration': {'policy', 'tracker'}, 'seconds'}, floats throughout.
  """
  start = time.time()
  seconds = {}
  environment = presets.make_environment(preset, seed=seed)
  environment_spec = specs.make_environment_spec(environment)
  networks, _ = evaluation.build_networks(preset, config, environment_spec)
  source = dict(kind='untrained')
  if workdir:
    steps = evaluation.restore_policy_networks(
        networks, workdir, evaluation.IMITATION_LEARNER,
        networks_kind=networks_kind)
    restore_critic_network(networks, workdir, evaluation.IMITATION_LEARNER,
                           networks_kind)
    source = dict(kind='checkpoint', workdir=workdir, learner_steps=steps,
                  networks=networks_kind)
  policy = evaluation.make_greedy_policy(
      networks, imitation.imitation_environment_spec(environment_spec))
  tracker = joint_tracker_policy(environment)
  critic, critic_gradient = make_network_critic(networks)

  builder = builder_lib.MetaMimicBuilder(config)
  reward = builder.make_imitation_reward()
  probe_environment = builder.make_imitation_environment(
      environment, demos, seed=seed, curriculum=False,
      early_termination='none')
  rng = np.random.default_rng(seed)
  fit = None
  if fit_critic_steps:
    fit_environment = builder.make_imitation_environment(
        environment, train_demos or demos, seed=seed, curriculum=False,
        early_termination='none')
    transitions = timed(seconds, 'collect_transitions',
                        collect_one_step_transitions, fit_environment,
                        train_demos or demos, tracker, reward,
                        fit_transitions, np.random.default_rng(seed + 1))
    fit = timed(seconds, 'fit_critic', fit_critic_to_one_step_reward,
                networks, transitions, fit_critic_steps, fit_learning_rate,
                64, seed)
    source = dict(source, fitted_to_one_step_reward=fit)
  imitation_of_demos = None
  if fit_inverse_dynamics_steps:
    transitions = timed(
        seconds, 'collect_exploration', collect_exploration_transitions,
        builder.make_imitation_environment(environment, train_demos or demos,
                                           seed=seed),
        policy, np.asarray(config.exploration_sigma()), fit_transitions,
        np.random.default_rng(seed + 2))
    fit = timed(seconds, 'fit_inverse_dynamics',
                fit_policy_by_inverse_dynamics, networks, transitions,
                fit_inverse_dynamics_steps, fit_learning_rate, 64, seed)
    source = dict(source, fitted_by_inverse_dynamics=fit)
    metrics, _ = timed(seconds, 'evaluate_imitation',
                       evaluation.evaluate_imitation, environment, policy,
                       builder, demos)
    imitation_of_demos = {key: float(value) for key, value in metrics.items()
                          if np.isscalar(value)}
  states = sample_demo_states(demos, num_states, horizon, rng)
  scores = timed(seconds, 'critic_ranking', score_candidates,
                 probe_environment, states, critic, policy, tracker, reward,
                 num_candidates, horizon,
                 config.imitation_learner_discount(), rng)
  cosine = timed(seconds, 'gradient_cosine', gradient_cosine,
                 probe_environment, states, critic_gradient, policy, reward,
                 epsilon, horizon, config.imitation_learner_discount())
  observations = [probe_environment.reset_to_demo(*s).observation
                  for s in states]
  sensitivity = timed(seconds, 'goal_sensitivity', lambda: {
      name: goal_sensitivity(observations, acting, goal_delta)
      for name, acting in (('policy', policy), ('tracker', tracker))})
  exploration = timed(seconds, 'exploration', lambda: {
      name: exploration_episode_lengths(
          builder.make_imitation_environment(environment, train_demos or demos,
                                             seed=seed),
          acting, np.asarray(config.exploration_sigma()), exploration_episodes,
          np.random.default_rng(seed))
      for name, acting in (('policy', policy), ('tracker', tracker))})
  seconds['total'] = round(time.time() - start, 2)
  extra = ({} if imitation_of_demos is None else
           dict(inverse_dynamics_imitation=imitation_of_demos))
  return dict(**extra,
      settings=dict(
          preset=preset, num_states=num_states, num_candidates=num_candidates,
          horizon=horizon, seed=seed, exploration_episodes=exploration_episodes,
          networks=networks_kind, epsilon=epsilon, goal_delta=goal_delta,
          tracker_gain=TRACKER_GAIN,
          discount=config.imitation_learner_discount(),
          sigma=config.exploration_sigma(),
          early_termination=config.early_termination,
          early_termination_cutoff=config.early_termination_cutoff,
          demo_curriculum=config.demo_curriculum,
          curriculum_max_step=config.curriculum_max_step,
          curriculum_peak_fraction=config.curriculum_peak_fraction,
          curriculum_peak_window=config.curriculum_peak_window,
          states=[[int(d.episode_id), t] for d, t in states]),
      source=source,
      critic_ranking=critic_ranking(scores),
      policy_vs_tracker=policy_vs_tracker(scores),
      critic_support=critic_support(scores, config.vmin,
                                    config.critic_vmax(True)),
      gradient_cosine=cosine,
      goal_sensitivity=sensitivity,
      exploration=exploration,
      seconds=seconds)
