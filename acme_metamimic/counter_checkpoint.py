"""Acme counters in TF checkpoints without a save function traced per save.

Acme checkpoints a `Counter` through `tf2_savers.SaveableAdapter`, a
`PythonState` whose saveable TensorFlow 2.8 pins to the literal device
'cpu:0', while every variable (the networks, a `tf.train.Checkpoint`'s own
`save_counter`) is on '/job:localhost/replica:0/task:0/device:CPU:0'. The
saver then sees two devices and defines and traces a new save function at
every checkpoint, and from the fifth on TF warns "triggered tf.function
retracing" (the learners' and the counter node's output, every run).

`CounterCheckpoint` keeps the counter's state as JSON in a string variable
instead: written just before each save and read back just after a restore
(a `SaveableHook`), saved by the same single-device saver as everything else.
The learners put it in their `state`; the counter node is a
`CheckpointedCounter`.
"""

import functools
import json
import time
from typing import Mapping

from acme.tf import savers as tf2_savers
from acme.utils import counting
import tensorflow as tf
# TF 2.8's hook for code at save and restore time (its TPU embedding uses
# it); it has no public alias.
from tensorflow.python.training.saving import saveable_hook


class _CounterHook(saveable_hook.SaveableHook):
  """Copies the counter into its variable before a save, back after a restore."""

  def __init__(self, name: str, state: 'CounterCheckpoint'):
    super().__init__(name)
    self._state = state

  def before_save(self):
    self._state.counts.assign(json.dumps(self._state.counter.save()))

  def after_restore(self):
    self._state.counter.restore(json.loads(self._state.counts.numpy()))


class CounterCheckpoint(tf.Module):
  """An Acme `Counter` as checkpointable TF state on the variables' device.

  `counts` holds the counter's `save()` (its own counts and cache) as JSON,
  so a checkpoint can be read without Acme.
  """

  def __init__(self, counter: counting.Counter):
    super().__init__(name='counter')
    self.counter = counter
    self.counts = tf.Variable('', dtype=tf.string, trainable=False)

  def _gather_saveables_for_checkpoint(self):
    return {'hook': functools.partial(_CounterHook, state=self)}


class CheckpointedCounter(counting.Counter, tf2_savers.TFSaveable):
  """The counter node: an Acme `Counter` that `CheckpointingRunner` saves as
  a `CounterCheckpoint`."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self._checkpoint = CounterCheckpoint(self)

  @property
  def state(self) -> Mapping[str, CounterCheckpoint]:
    return {'counter': self._checkpoint}


class CounterCheckpointingRunner(tf2_savers.CheckpointingRunner):
  """Acme's `CheckpointingRunner` for the counter node, at any period.

  Acme's runner sleeps `range(time_delta_minutes * 60)` seconds between the
  saves of an object that is not a learner, so a fractional period (the kill
  tests checkpoint every 0.1 minutes) raises TypeError there. This one sleeps
  the same way, one second at a time (Launchpad's stop must not wait long),
  for the period rounded to whole seconds.
  """

  def checkpoint(self):
    self._checkpointer.save()
    for _ in range(max(1, round(self._time_delta_minutes * 60))):
      time.sleep(1)
