"""Task-learner batches per second with D4PGfD's demos mixed in; one JSON.

The task and demo tables of `MetaMimicBuilder.make_replay_tables(...,
demo_table=True)` on one in-process Reverb server, each filled with
--items features-preset transitions (random actions, episodes of 200
steps) through the builder's adders. In alternating rounds of --batches
batches (after 50 warm-up batches per pipeline), one process reads

- task_only: `make_task_dataset_iterator(client)`, D4PG's pipeline;
- fixed_share: `make_task_dataset_iterator(client, demos=True)`, 48 task and
  16 demo items per batch, each part batched by Acme's `make_reverb_dataset`
  and concatenated;
- item_mixed: the design it replaced, Acme's DQfD mixing: unbatched
  datasets of both tables, `tf.data.Dataset.sample_from_datasets` with
  weights (0.75, 0.25), then batching.

  .venv/bin/python bench/bench_demo_batches.py
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
from acme import datasets
from acme import specs
import dm_env
import numpy as np
import reverb
import tensorflow as tf

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import presets


def _fill(environment, spec, adder, num_items: int, episode_length: int):
  rng = np.random.default_rng(0)
  timestep = environment.reset()
  adder.add_first(timestep)
  for t in range(num_items):
    action = rng.uniform(spec.actions.minimum, spec.actions.maximum,
                         spec.actions.shape).astype(np.float32)
    timestep = environment.step(action)
    if t % episode_length == episode_length - 1:
      timestep = timestep._replace(step_type=dm_env.StepType.LAST)
    adder.add(action, timestep)
    if timestep.last():
      timestep = environment.reset()
      adder.add_first(timestep)


def _item_mixed(config: config_lib.MetaMimicConfig, address: str):
  task, demo = (datasets.make_reverb_dataset(table=table,
                                             server_address=address)
                for table in (config_lib.TASK_TABLE, config_lib.DEMO_TABLE))
  dataset = tf.data.Dataset.sample_from_datasets(
      [task, demo], [1. - config.demo_ratio, config.demo_ratio])
  dataset = dataset.batch(config.batch_size, drop_remainder=True)
  return iter(dataset.prefetch(config.prefetch_size))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--items', type=int, default=3000)
  parser.add_argument('--batches', type=int, default=400)
  parser.add_argument('--rounds', type=int, default=2)
  args = parser.parse_args()

  environment = presets.make_environment('features', seed=0)
  spec = specs.make_environment_spec(environment)
  config = config_lib.features_config()
  builder = builder_lib.MetaMimicBuilder(config)
  tables = [t for t in builder.make_replay_tables(spec, demo_table=True)
            if t.name != config_lib.IMITATION_TABLE]
  server = reverb.Server(tables, port=None)
  client = reverb.Client(f'localhost:{server.port}')
  for adder in (builder.make_adder(client), builder.make_demo_adder(client)):
    _fill(environment, spec, adder, args.items, episode_length=200)
  pipelines = {
      'task_only': builder.make_task_dataset_iterator(client),
      'fixed_share': builder.make_task_dataset_iterator(client, demos=True),
      'item_mixed': _item_mixed(config, client.server_address),
  }
  rates = {name: [] for name in pipelines}
  for iterator in pipelines.values():
    for _ in range(50):
      next(iterator)
  for _ in range(args.rounds):
    for name, iterator in pipelines.items():
      start = time.perf_counter()
      for _ in range(args.batches):
        next(iterator)
      rates[name].append(round(args.batches / (time.perf_counter() - start),
                               1))
  sizes = {name: info.current_size
           for name, info in client.server_info().items()}
  print(json.dumps(dict(
      batches_per_s_rounds=rates,
      batches_per_s_median={k: statistics.median(v) for k, v in rates.items()},
      batch_size=config.batch_size,
      demo_items_per_batch=builder.demo_batch_size(),
      table_sizes=sizes, cpus=os.cpu_count())))
  os._exit(0)  # Skips TF's and Reverb's noisy teardown of live iterators.


if __name__ == '__main__':
  main()
