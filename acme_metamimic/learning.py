"""Prioritized replay for Acme's D4PG learner.

Acme's tf `D4PGLearner` samples from Reverb but never updates priorities. The
paper's imitation table uses prioritized sampling *and* prioritized removal, so
the imitation learner must write TD errors back. `PriorityUpdatingIterator`
wraps the learner's dataset iterator: the learner's `tf.function` step pulls
each batch through it, and the wrapper adds, inside that same graph, the
computation of |E[target] - E[Q(o_t, a_t)]| with the learner's own online and
target networks and a Reverb `update_priorities` op for the sampled keys. The
D4PG loss, optimizers, target updates and checkpointing stay Acme's.
"""

from typing import Iterator

from acme import types
from acme.agents.tf.d4pg import agent as d4pg_agent
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
               priority_epsilon: float = 1e-3):
    """Creates the wrapper.

    Args:
      iterator: the learner's dataset iterator over `table`.
      online_networks: the learner's online networks (same objects).
      target_networks: the learner's target networks (same objects).
      server_address: the Reverb server holding `table`.
      table: the prioritized table.
      discount: the agent's discount, applied on top of the n-step discount.
      priority_epsilon: added so that no item gets priority 0.
    """
    self._iterator = iterator
    self._online = online_networks
    self._target = target_networks
    self._client = reverb.TFClient(server_address)
    self._table = table
    self._discount = discount
    self._epsilon = priority_epsilon

  def __iter__(self):
    return self

  def __next__(self) -> reverb.ReplaySample:
    sample = next(self._iterator)
    priorities = self.td_errors(sample.data) + self._epsilon
    self._client.update_priorities(
        self._table, sample.info.key, tf.cast(priorities, tf.float64))
    return sample

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
