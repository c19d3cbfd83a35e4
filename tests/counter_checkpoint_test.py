"""Counters in TF checkpoints: restored whole, no save function per save."""

import functools

from acme.utils import counting
import tensorflow as tf

from acme_metamimic import agent_distributed
from acme_metamimic import baselines
from acme_metamimic import config as config_lib
from acme_metamimic import counter_checkpoint
from acme_metamimic import presets


def _program(workdir: str, baseline: str
             ) -> agent_distributed.DistributedMetaMimic:
  """A features-preset program definition whose nodes checkpoint at once."""
  config = baselines.get(baseline).apply(config_lib.features_config())
  return agent_distributed.DistributedMetaMimic(
      environment_factory=functools.partial(presets.make_environment,
                                            'features'),
      network_factory=functools.partial(presets.make_networks, 'features',
                                        config),
      demonstrations_factory=lambda split: [], config=config,
      workdir=workdir, baseline=baselines.get(baseline),
      demo_transitions_factory=lambda: [], checkpoint_minutes=0)


def test_counter_round_trips_beside_a_variable(tmp_path, traced_functions):
  counter = counting.Counter()
  variable = tf.Variable(tf.range(3, dtype=tf.float32))
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(v=variable,
                          counter=counter_checkpoint.CounterCheckpoint(counter)),
      str(tmp_path), max_to_keep=1)
  for _ in range(7):
    counter.increment(steps=2, walltime=0.25)
    manager.save()
  # With Acme's SaveableAdapter, each of these saves traced a save function.
  assert not [name for name in traced_functions if 'Saver' in name], (
      traced_functions)

  restored = counting.Counter()
  tf.train.Checkpoint(
      v=tf.Variable(tf.zeros(3)),
      counter=counter_checkpoint.CounterCheckpoint(restored)).restore(
          manager.latest_checkpoint).assert_consumed()
  assert restored.get_counts() == {'steps': 14, 'walltime': 1.75}


def test_counter_node_resumes_its_counts_and_traces_no_save(
    tmp_path, traced_functions):
  definition = _program(str(tmp_path), 'metamimic')
  node = definition.counter()  # As the program's counter node.
  for _ in range(7):
    node.increment(imitation_learner_steps=4)
    node.checkpoint()  # Saves (the period is 0 minutes).
  assert not [name for name in traced_functions if 'Saver' in name], (
      traced_functions)
  # The learners' counts start at 0 (evaluator logs fix their columns at the
  # first row); restored ones are kept.
  assert definition.counter().get_counts() == {'imitation_learner_steps': 28,
                                               'task_learner_steps': 0}


def test_counter_node_starts_with_each_learners_count(tmp_path):
  for baseline, counts in (
      ('metamimic', {'imitation_learner_steps': 0, 'task_learner_steps': 0}),
      ('d4pg', {'task_learner_steps': 0})):
    definition = _program(str(tmp_path / baseline), baseline)
    assert definition.counter().get_counts() == counts, baseline
