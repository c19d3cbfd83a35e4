"""D4PG learners for MetaMimic: Acme's step, compiled, with fused priorities.

`D4PGLearner` subclasses Acme's tf `D4PGLearner` and keeps everything a user of
it relies on (constructor arguments, `get_variables`, `state` for Acme's
`CheckpointingRunner`, counter and logger keys). What changes is how a step runs
on a CPU-bound machine:

- The SGD step is one function of the sampled batch, compiled with XLA
  when `jit_compile` (`MetaMimicConfig.learner_jit_compile`, which
  launch/run_local.py turns on). Its math is Acme's: `losses.categorical` for the
  critic, `losses.dpg` for the policy, global-norm clipping at 40, Adam, the
  periodic target copy. Reverb sampling and priority writes are not XLA ops,
  so they stay in the surrounding `tf.function`.
- For the prioritized imitation table the step also returns
  |r + gamma * d * E[Z'(o', pi'(o'))] - E[Z(o, a)]| from the forward pass the
  loss already made (the same networks and values as a separate pass over the
  batch before the update), and the surrounding function writes it with
  `reverb.TFClient.update_priorities`, every `priority_update_period`-th batch.
- `steps_per_call` SGD steps run per `step()` call, so the Python around a step
  (counter, logger, timing) is paid once per call.
- With `inverse_dynamics_weight` w > 0 (the imitation learner,
  `MetaMimicConfig.inverse_dynamics_weight`), the policy loss is Acme's DPG
  loss plus w * |pi(o_t, g = o_{t+1}) - a_t|^2 (summed over action
  dimensions, averaged over the batch), where o_{t+1} is the hindsight goal
  the adder put in the item's extras: the policy learns which action reaches
  a goal from the agent's own transitions (hindsight inverse dynamics). Its
  gradient reaches the policy head only, as the DPG loss's does; the
  observation network stays the critic's.
- With `behaviour_cloning_weight` w > 0 (the task learner,
  `MetaMimicConfig.task_behaviour_cloning_weight`), the policy loss is Acme's
  DPG loss plus w * |pi(o_t) - a_t|^2 over the batch's own actions (TD3+BC,
  Fujimoto & Gu, 2021): in MetaMimic's task table those are the imitation
  actors' and the task actors' actions, never a demonstrator's. Its gradient
  reaches the policy head only, or with `behaviour_cloning_trains_torso`
  (`MetaMimicConfig.task_behaviour_cloning_trains_torso`) also the
  observation network, which the critic's loss alone trains otherwise: the
  torso's features then hold what the regression needs as well as what the
  critic's does. With `behaviour_cloning_labels='greedy'`
  (`MetaMimicConfig.task_behaviour_cloning_labels`) the regression's targets
  are the noise-free actions in the items' extras instead, weighted by their
  extras' clone weights (1 for the imitation actors' items, 0 for the task
  actors'): sum_i w_i |pi(o_i) - a*_i|^2 / max(sum_i w_i, 1).

The learner's checkpoint holds its counter as a
`counter_checkpoint.CounterCheckpoint` (JSON in a string variable), not as
Acme's `SaveableAdapter`, with which TensorFlow traced a new save function at
every checkpoint.

`PriorityUpdatingIterator`, the earlier design, wraps the dataset iterator and
makes a second forward pass for the priorities; it is kept for learners that are
not this class (e.g. Acme's own) and for benchmarks of the difference.
"""

import time
from typing import Dict, Iterator, Mapping, Optional, Tuple

from acme import types
from acme.agents.tf.d4pg import agent as d4pg_agent
from acme.agents.tf.d4pg import learning as d4pg_learning
from acme.tf import losses
from acme.tf import savers as tf2_savers
import reverb
import tensorflow as tf
import tree

from acme_metamimic import adders
from acme_metamimic import config as config_lib
from acme_metamimic import counter_checkpoint
from acme_metamimic.environments import imitation


class PriorityUpdatingIterator:
  """Wraps a Reverb dataset iterator; writes TD-error priorities per batch."""

  def __init__(self,
               iterator: Iterator[reverb.ReplaySample],
               online_networks: d4pg_agent.D4PGNetworks,
               target_networks: d4pg_agent.D4PGNetworks,
               server_address: str,
               table: str,
               discount: float,
               priority_epsilon: float = 1e-3,
               update_period: int = 1):
    """Creates the wrapper.

    Args:
      iterator: the learner's dataset iterator over `table`.
      online_networks: the learner's online networks (same objects).
      target_networks: the learner's target networks (same objects).
      server_address: the Reverb server holding `table`.
      table: the prioritized table.
      discount: the agent's discount, applied on top of the n-step discount.
      priority_epsilon: added so that no item gets priority 0.
      update_period: write priorities for every `update_period`-th batch only
        (1: every batch). The TD-error pass is an extra forward pass of all
        networks on every learner step; a period k > 1 divides its cost by k,
        and the batches in between keep their previous priorities.
    """
    if update_period < 1:
      raise ValueError(f'update_period must be >= 1, got {update_period}.')
    self._iterator = iterator
    self._online = online_networks
    self._target = target_networks
    self._client = reverb.TFClient(server_address)
    self._table = table
    self._discount = discount
    self._epsilon = priority_epsilon
    self._period = update_period
    self._batches = tf.Variable(0, dtype=tf.int64, trainable=False)

  def __iter__(self):
    return self

  def __next__(self) -> reverb.ReplaySample:
    sample = next(self._iterator)
    if self._period == 1:
      self._update_priorities(sample)
      return sample
    tf.cond(tf.equal(self._batches % self._period, 0),
            lambda: self._update_priorities(sample),
            lambda: tf.constant(False))
    self._batches.assign_add(1)
    return sample

  def _update_priorities(self, sample: reverb.ReplaySample) -> tf.Tensor:
    priorities = self.td_errors(sample.data) + self._epsilon
    update = self._client.update_priorities(
        self._table, sample.info.key, tf.cast(priorities, tf.float64))
    with tf.control_dependencies([update]):
      return tf.constant(True)

  def td_errors(self, transitions: types.Transition) -> tf.Tensor:
    """|r + gamma d E[Z'(o', pi'(o'))] - E[Z(o, a)]| per transition."""
    o_tm1 = self._online.observation_network(transitions.observation)
    o_t = self._target.observation_network(transitions.next_observation)
    q_tm1 = self._online.critic_network(o_tm1, transitions.action).mean()
    q_t = self._target.critic_network(
        o_t, self._target.policy_network(o_t)).mean()
    discount = tf.cast(self._discount, transitions.discount.dtype)
    target = (tf.cast(transitions.reward, q_t.dtype) +
              tf.cast(discount * transitions.discount, q_t.dtype) * q_t)
    return tree.map_structure(tf.stop_gradient, tf.abs(target - q_tm1))


class D4PGLearner(d4pg_learning.D4PGLearner, tf2_savers.TFSaveable):
  """Acme's D4PG learner: compiled step, fused priorities, several steps a call.

  Also exposes its TF state for `CheckpointingRunner` (`state`), which is what
  lets a stopped program resume.
  """

  def __init__(self,
               *args,
               priority_table: Optional[str] = None,
               server_address: Optional[str] = None,
               priority_epsilon: float = 1e-3,
               priority_update_period: int = 1,
               steps_per_call: int = 1,
               jit_compile: bool = True,
               inverse_dynamics_weight: float = 0.,
               behaviour_cloning_weight: float = 0.,
               behaviour_cloning_trains_torso: bool = False,
               behaviour_cloning_labels: str = 'executed',
               **kwargs):
    """Creates the learner; `args` and `kwargs` are Acme's `D4PGLearner`'s.

    Args:
      *args: see `acme.agents.tf.d4pg.learning.D4PGLearner`.
      priority_table: if given, the TD-error priorities of sampled batches are
        written to this table of the server at `server_address`.
      server_address: the Reverb server holding `priority_table`.
      priority_epsilon: added so that no item gets priority 0.
      priority_update_period: write priorities for every k-th batch only.
      steps_per_call: SGD steps per `step()` call.
      jit_compile: compile the SGD step with XLA.
      inverse_dynamics_weight: weight of the hindsight inverse-dynamics loss
        (module docstring); its batches must carry
        extras['hindsight_goal'] (`adders.ImitationRewardAdder`).
      behaviour_cloning_weight: weight of the regression of the policy on
        the batch's actions (module docstring).
      behaviour_cloning_trains_torso: the regression's gradient also trains
        the observation network (with the critic's optimizer), not only the
        policy head.
      behaviour_cloning_labels: 'executed' (the batch's actions) or 'greedy'
        (the noise-free actions in its extras, module docstring).
      **kwargs: see `acme.agents.tf.d4pg.learning.D4PGLearner`.
    """
    super().__init__(*args, **kwargs)
    if priority_update_period < 1:
      raise ValueError('priority_update_period must be >= 1, got '
                       f'{priority_update_period}.')
    if steps_per_call < 1:
      raise ValueError(f'steps_per_call must be >= 1, got {steps_per_call}.')
    if priority_table is not None and server_address is None:
      raise ValueError('priority_table needs a server_address.')
    if inverse_dynamics_weight < 0.:
      raise ValueError('inverse_dynamics_weight must be >= 0, got '
                       f'{inverse_dynamics_weight}.')
    if behaviour_cloning_weight < 0.:
      raise ValueError('behaviour_cloning_weight must be >= 0, got '
                       f'{behaviour_cloning_weight}.')
    self._inverse_dynamics_weight = inverse_dynamics_weight
    self._behaviour_cloning_weight = behaviour_cloning_weight
    if behaviour_cloning_labels not in config_lib.BEHAVIOUR_CLONING_LABELS:
      raise ValueError('behaviour_cloning_labels must be one of '
                       f'{config_lib.BEHAVIOUR_CLONING_LABELS}, got '
                       f'{behaviour_cloning_labels!r}.')
    self._behaviour_cloning_trains_torso = behaviour_cloning_trains_torso
    self._behaviour_cloning_labels = behaviour_cloning_labels
    self._priority_table = priority_table
    self._priority_client = (reverb.TFClient(server_address)
                             if priority_table is not None else None)
    self._priority_epsilon = priority_epsilon
    self._priority_update_period = priority_update_period
    self._steps_per_call = steps_per_call
    self._counter_checkpoint = counter_checkpoint.CounterCheckpoint(
        self._counter)
    self._sgd_step = tf.function(self._sgd_step_fn, jit_compile=jit_compile)

  def _sgd_step_fn(self, transitions: types.Transition
                   ) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
    """One D4PG update on a batch; returns the losses and the TD errors.

    The same computation as Acme's `D4PGLearner._step` after sampling (target
    copy, Acme's losses, clipping, Adam), plus the priorities from its own
    forward pass.
    """
    online_variables = (*self._observation_network.variables,
                        *self._critic_network.variables,
                        *self._policy_network.variables)
    target_variables = (*self._target_observation_network.variables,
                        *self._target_critic_network.variables,
                        *self._target_policy_network.variables)
    if tf.math.mod(self._num_steps, self._target_update_period) == 0:
      for source, destination in zip(online_variables, target_variables):
        destination.assign(source)
    self._num_steps.assign_add(1)

    discount = tf.cast(self._discount, dtype=transitions.discount.dtype)
    with tf.GradientTape(persistent=True) as tape:
      o_tm1 = self._observation_network(transitions.observation)
      o_t = self._target_observation_network(transitions.next_observation)
      o_t = tree.map_structure(tf.stop_gradient, o_t)
      q_tm1 = self._critic_network(o_tm1, transitions.action)
      q_t = self._target_critic_network(o_t, self._target_policy_network(o_t))
      critic_loss = tf.reduce_mean(losses.categorical(
          q_tm1, transitions.reward, discount * transitions.discount, q_t),
                                   axis=[0])
      dpg_a_t = self._policy_network(o_t)
      dpg_q_t = self._critic_network(o_t, dpg_a_t).mean()
      policy_loss = tf.reduce_mean(losses.dpg(
          dpg_q_t, dpg_a_t, tape=tape,
          dqda_clipping=1.0 if self._clipping else None,
          clip_norm=self._clipping), axis=[0])
      losses_out = {'critic_loss': critic_loss, 'policy_loss': policy_loss}
      # What the critic's optimizer minimises: the critic's loss, plus the
      # regression's when that also trains the observation network.
      torso_loss = critic_loss
      if self._inverse_dynamics_weight:
        inverse_dynamics_loss = self._inverse_dynamics_loss(transitions)
        losses_out['inverse_dynamics_loss'] = inverse_dynamics_loss
        policy_loss = (policy_loss +
                       self._inverse_dynamics_weight * inverse_dynamics_loss)
      if self._behaviour_cloning_weight:
        behaviour_cloning_loss = self._behaviour_cloning_loss(
            self._policy_network(o_tm1), transitions)
        losses_out['behaviour_cloning_loss'] = behaviour_cloning_loss
        policy_loss = (policy_loss +
                       self._behaviour_cloning_weight * behaviour_cloning_loss)
        if self._behaviour_cloning_trains_torso:
          torso_loss = (torso_loss + self._behaviour_cloning_weight *
                        behaviour_cloning_loss)

    policy_variables = self._policy_network.trainable_variables
    critic_variables = (self._observation_network.trainable_variables +
                        self._critic_network.trainable_variables)
    policy_gradients = tape.gradient(policy_loss, policy_variables)
    critic_gradients = tape.gradient(torso_loss, critic_variables)
    del tape
    if self._clipping:
      policy_gradients = tf.clip_by_global_norm(policy_gradients, 40.)[0]
      critic_gradients = tf.clip_by_global_norm(critic_gradients, 40.)[0]
    self._policy_optimizer.apply(policy_gradients, policy_variables)
    self._critic_optimizer.apply(critic_gradients, critic_variables)

    target = (tf.cast(transitions.reward, tf.float32) + tf.cast(
        discount * transitions.discount, tf.float32) * q_t.mean())
    td_errors = tf.stop_gradient(tf.abs(target - q_tm1.mean()))
    return losses_out, td_errors

  def _behaviour_cloning_loss(self, predicted: tf.Tensor,
                              transitions: types.Transition) -> tf.Tensor:
    """The regression on the batch's actions or its greedy labels."""
    if self._behaviour_cloning_labels == 'executed':
      return _squared_error(predicted, transitions.action)
    extras = transitions.extras or {}
    if adders.GREEDY_ACTION not in extras:
      raise ValueError(
          "behaviour_cloning_labels='greedy' needs task items with extras "
          f"['{adders.GREEDY_ACTION}'] and ['{adders.CLONE_WEIGHT}'] (actors "
          'with a clone_weight); this batch has extras '
          f'{transitions.extras!r}.')
    labels = tf.cast(extras[adders.GREEDY_ACTION], predicted.dtype)
    weights = tf.cast(extras[adders.CLONE_WEIGHT], predicted.dtype)
    errors = tf.reduce_sum(tf.square(predicted - labels), axis=-1)
    return (tf.reduce_sum(weights * errors) /
            tf.maximum(tf.reduce_sum(weights), 1.))

  def _inverse_dynamics_loss(self, transitions: types.Transition) -> tf.Tensor:
    """Mean over the batch of |pi(o_t, g = o_{t+1}) - a_t|^2."""
    if adders.HINDSIGHT_GOAL not in (transitions.extras or {}):
      raise ValueError(
          'inverse_dynamics_weight > 0 needs imitation items with '
          f"extras['{adders.HINDSIGHT_GOAL}'] (ImitationRewardAdder("
          'hindsight_goals=True)); this batch has extras '
          f'{transitions.extras!r}.')
    hindsight = {
        imitation.OBSERVATION: transitions.observation[imitation.OBSERVATION],
        imitation.GOAL: transitions.extras[adders.HINDSIGHT_GOAL]}
    predicted = self._policy_network(self._observation_network(hindsight))
    return _squared_error(predicted, transitions.action)

  def _write_priorities(self, keys: tf.Tensor, td_errors: tf.Tensor):
    priorities = tf.cast(td_errors + self._priority_epsilon, tf.float64)
    return self._priority_client.update_priorities(
        self._priority_table, keys, priorities)

  @tf.function
  def _step(self) -> Dict[str, tf.Tensor]:
    fetches = {}
    for _ in range(self._steps_per_call):
      # The step count before this update decides whether its batch's
      # priorities are written (0, k, 2k, ... as PriorityUpdatingIterator).
      write = tf.equal(self._num_steps % self._priority_update_period, 0)
      sample = next(self._iterator)
      fetches, td_errors = self._sgd_step(sample.data)
      if self._priority_client is not None:
        if self._priority_update_period == 1:
          self._write_priorities(sample.info.key, td_errors)
        else:
          tf.cond(write,
                  lambda: self._write_priorities(sample.info.key, td_errors),
                  tf.no_op)
    return fetches

  def step(self):
    """`steps_per_call` SGD steps, then one counter increment and log write."""
    fetches = self._step()
    timestamp = time.time()
    elapsed = timestamp - self._timestamp if self._timestamp else 0
    self._timestamp = timestamp
    fetches.update(self._counter.increment(steps=self._steps_per_call,
                                           walltime=elapsed))
    if self._checkpointer is not None:
      self._checkpointer.save()
    if self._snapshotter is not None:
      self._snapshotter.save()
    self._logger.write(fetches)

  @property
  def state(self) -> Mapping[str, object]:
    """Networks, optimizers, step count and counter: all a resume needs."""
    return {
        'counter': self._counter_checkpoint,
        'policy': self._policy_network,
        'critic': self._critic_network,
        'observation': self._observation_network,
        'target_policy': self._target_policy_network,
        'target_critic': self._target_critic_network,
        'target_observation': self._target_observation_network,
        'policy_optimizer': self._policy_optimizer,
        'critic_optimizer': self._critic_optimizer,
        'num_steps': self._num_steps,
    }


def _squared_error(predicted: tf.Tensor, action: tf.Tensor) -> tf.Tensor:
  """|predicted - action|^2 summed over action dimensions, batch mean."""
  action = tf.cast(action, predicted.dtype)
  return tf.reduce_mean(tf.reduce_sum(tf.square(predicted - action), axis=-1))


class LearnerCheckpointingRunner(tf2_savers.CheckpointingRunner):
  """Acme's `CheckpointingRunner` for a learner node, safe to stop any time.

  Acme saves from the stop handler (SIGTERM, or Launchpad's stop), which runs
  between two Python bytecodes of the node's main thread. When the stop came
  while the learner traced its step function (its first step, about 10-20 s
  after a node starts on 2 cores), the save ran inside the function's graph
  and failed ("'NoneType' object has no attribute 'run'"): the learner ended
  with a traceback and no stop checkpoint (seen in tests/program_test.py's
  Ctrl+C run). Here a stop during tracing only marks the save, which runs
  once the stopped step has unwound (nothing of a step that was being traced
  has changed any variable).
  """

  _save_when_stopped = False

  def _signal_handler(self):
    if tf.inside_function():
      self._save_when_stopped = True
    else:
      super()._signal_handler()

  def run(self):
    super().run()  # Returns when stopped (Acme's `runtime_terminator`).
    if self._save_when_stopped:
      self._checkpointer.save(force=True)
