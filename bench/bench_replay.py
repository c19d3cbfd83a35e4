"""Reverb insert and sample rates of both MetaMimic tables; one JSON.

Items have the real shapes of `NStepTransitionAdder.signature`: task items are
(o_t, a_t, r, discount, o_{t+n}); imitation items the same with
o = {'observation': o, 'goal': d}. Shapes: the features preset (body 18,
hand_to_target 3, features 38) and the vision preset (adds a 128x128x3 uint8
image, so an imitation item holds four images). Tables come from
`MetaMimicBuilder.make_replay_tables` on one in-process server.

- insert: one item per step through a `TrajectoryWriter` (append + create_item,
  the writer calls an N-step adder makes; random content so compression has
  no easy wins), items/s;
- sample: Acme's `datasets.make_reverb_dataset` at batch 64 (the learners'
  input pipeline: prioritized sampling for imitation, uniform for task),
  transitions/s.

  .venv/bin/python bench/bench_replay.py
"""

import argparse
import json
import os
import time

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
from acme import datasets
from acme import specs
from acme import types
import numpy as np
import reverb
import tree

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic.environments import imitation
from acme_metamimic.environments import jaco_stack
# pylint: enable=g-import-not-at-top,wrong-import-position


def _random(spec, rng):
  def sample(leaf):
    if leaf.dtype == np.uint8:
      return rng.integers(0, 256, leaf.shape, dtype=np.uint8)
    return rng.normal(size=leaf.shape).astype(leaf.dtype)
  return tree.map_structure(sample, spec)


def _transition(env_spec, rng):
  return types.Transition(
      observation=_random(env_spec.observations, rng),
      action=_random(env_spec.actions, rng),
      reward=np.float32(rng.uniform()),
      discount=np.float32(1.),
      next_observation=_random(env_spec.observations, rng),
      extras=())


def insert_rate(client, table, items, priority):
  start = time.perf_counter()
  with client.trajectory_writer(num_keep_alive_refs=1) as writer:
    for item in items:
      writer.append(item)
      writer.create_item(table, priority,
                         tree.map_structure(lambda c: c[-1], writer.history))
    writer.flush()
  return len(items) / (time.perf_counter() - start)


def sample_rate(client, table, batch_size, batches):
  dataset = datasets.make_reverb_dataset(
      table=table, server_address=client.server_address,
      batch_size=batch_size, prefetch_size=4)
  iterator = iter(dataset)
  for _ in range(3):
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * batch_size / (time.perf_counter() - start)


def bench_preset(preset, args, rng):
  env = jaco_stack.make_environment(preset, seed=0,
                                    image_size=args.image_size)
  env_spec = specs.make_environment_spec(env)
  imitation_spec = imitation.imitation_environment_spec(env_spec)
  config = config_lib.features_config(
      max_replay_size=args.max_replay_size, min_replay_size=1,
      batch_size=args.batch_size)
  builder = builder_lib.MetaMimicBuilder(config)
  server = reverb.Server(builder.make_replay_tables(env_spec), port=None)
  client = reverb.Client(f'localhost:{server.port}')
  count = args.items if preset == 'features' else args.vision_items
  batches = args.batches if preset == 'features' else args.vision_batches
  # A pool of distinct random items, cycled.
  pool = 64
  specs_by_table = {config_lib.IMITATION_TABLE: imitation_spec,
                    config_lib.TASK_TABLE: env_spec}
  result = {}
  for table, spec in specs_by_table.items():
    items = [_transition(spec, rng) for _ in range(pool)]
    items = [items[i % pool] for i in range(count)]
    item_bytes = sum(np.asarray(x).nbytes for x in tree.flatten(items[0]))
    inserts = insert_rate(client, table, items,
                          config.initial_priority if table ==
                          config_lib.IMITATION_TABLE else 1.)
    samples = sample_rate(client, table, args.batch_size, batches)
    result[table] = {
        'item_bytes_uncompressed': item_bytes,
        'inserted_items': count,
        'insert_items_per_s': round(inserts, 1),
        'insert_mb_per_s': round(inserts * item_bytes / 1e6, 1),
        'sample_transitions_per_s': round(samples, 1),
        'sample_batches_per_s': round(samples / args.batch_size, 2),
    }
  result['imitation_vs_task'] = {
      'insert': round(result['imitation']['insert_items_per_s'] /
                      result['task']['insert_items_per_s'], 3),
      'sample': round(result['imitation']['sample_transitions_per_s'] /
                      result['task']['sample_transitions_per_s'], 3),
  }
  server.stop()
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--items', type=int, default=5000)
  parser.add_argument('--vision_items', type=int, default=1000)
  parser.add_argument('--batches', type=int, default=200)
  parser.add_argument('--vision_batches', type=int, default=30)
  parser.add_argument('--batch_size', type=int, default=64)
  parser.add_argument('--image_size', type=int, default=128)
  parser.add_argument('--max_replay_size', type=int, default=100_000)
  parser.add_argument('--presets', default='features,vision')
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  results = {p: bench_preset(p, args, rng) for p in args.presets.split(',')}
  print(json.dumps({'results': results, 'batch_size': args.batch_size,
                    'image_size': args.image_size,
                    'cpus': len(os.sched_getaffinity(0))}))


if __name__ == '__main__':
  main()
