"""One run seed for every random stream of a MetaMimic program.

`MetaMimicConfig.seed` (run_local's `--seed`) is the run's seed. Each node
derives its own from it and its name, so that nodes draw distinct streams
and the same run seed gives the same streams again:

- learners: network initialisation (TensorFlow's global seed is set before
  the networks are built);
- actors: the environment's random initial conditions, the demo and
  curriculum start sampling of `ImitationEnvironment` (and of task actors'
  `CurriculumStartEnvironment`), and the exploration noise, which the actors
  draw from TensorFlow's global generator (`actors.NumpyPolicy`, Acme's
  `FeedForwardActor`);
- the evaluator: its environments' initial conditions.

Demo sets are not seeded from here: they keep run_local's `--demo_seed`, so
that every training seed learns from and is evaluated on the same demos.
"""

import random
import zlib

import numpy as np
import tensorflow as tf

# Streams of one node: an environment, its demo sampling, TensorFlow.
ENVIRONMENT = 'environment'
DEMOS = 'demos'
TENSORFLOW = 'tensorflow'


def node_seed(run_seed: int, node: str, index: int = 0,
              stream: str = TENSORFLOW) -> int:
  """A seed in [0, 2**31) for one stream of node `node` number `index`.

  Names are hashed with CRC-32 (the same in every process, unlike Python's
  `hash`), and NumPy's `SeedSequence` mixes them with the run seed, so that
  nearby run seeds or indices give unrelated streams.
  """
  entropy = [run_seed, zlib.crc32(node.encode()), index,
             zlib.crc32(stream.encode())]
  return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def seed_process(run_seed: int, node: str, index: int = 0) -> int:
  """Seeds TensorFlow, NumPy and Python's global generators for a node.

  Call it first in a node's body, before its networks and policies are
  built: Sonnet's initialisers and the actors' exploration noise draw from
  TensorFlow's global generator. Returns the seed used.
  """
  seed = node_seed(run_seed, node, index, TENSORFLOW)
  tf.random.set_seed(seed)
  np.random.seed(seed)
  random.seed(seed)
  return seed
