"""Prioritized replay for Acme's D4PG learner.

Acme's tf `D4PGLearner` samples from Reverb but never updates priorities. The
paper's imitation table uses prioritized sampling *and* prioritized removal, so
the imitation learner must write TD errors back. `PriorityUpdatingIterator`
wraps the learner's dataset iterator: the learner's `tf.function` step pulls
each batch through it, and the wrapper adds, inside that same graph, the
computation of |E[target] - E[Q(o_t, a_t)]| with the learner's own online and
target networks and a Reverb `update_priorities` op for the sampled keys. The
D4PG loss, optimizers, target updates and checkpointing stay Acme's.

`D4PGLearner` is Acme's learner plus a `state` property, so that Acme's
`CheckpointingRunner` can checkpoint it under a directory of our choosing (the
workdir), which is what lets a stopped program resume.
"""

from typing import Iterator, Mapping

from acme import types
from acme.agents.tf.d4pg import agent as d4pg_agent
from acme.agents.tf.d4pg import learning as d4pg_learning
from acme.tf import savers as tf2_savers
import reverb
import tensorflow as tf
import tree


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
  """Acme's D4PG learner exposing its TF state for `CheckpointingRunner`."""

  @property
  def state(self) -> Mapping[str, object]:
    """Networks, optimizers, step count and counter: all a resume needs."""
    return {
        'counter': tf2_savers.SaveableAdapter(self._counter),
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
