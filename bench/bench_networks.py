"""CPU throughput and parameter counts of MetaMimic's D4PG networks.

For each torso this builds goal-conditioned (imitation) D4PG networks and times
a compiled training-like step on a batch: encoder forward, critic forward on
(embedding, action) with a cross-entropy loss to a fixed target distribution,
policy forward and critic forward on (stop_gradient(embedding), policy action)
with the DPG loss -Q, then gradients of the summed loss w.r.t. all encoder,
policy and critic variables and an Adam update. Prints one JSON object.

  .venv/bin/python bench/bench_networks.py
  .venv/bin/python bench/bench_networks.py --batch_size=64 --paper_iterations=3
"""

import argparse
import json
import os
import platform
import time
from typing import Any, Dict

from acme import specs
from acme_metamimic import networks
import numpy as np
import sonnet as snt
import tensorflow as tf

FEATURES_DIM = 48
ACTION_DIM = 9


def _environment_spec(image_size: int) -> specs.EnvironmentSpec:
  return specs.EnvironmentSpec(
      observations={
          'body': specs.Array((18,), np.float32, 'body'),
          'features': specs.Array((FEATURES_DIM,), np.float32, 'features'),
          'image': specs.Array((image_size, image_size, 3), np.uint8, 'image'),
      },
      actions=specs.BoundedArray((ACTION_DIM,), np.float32, -1., 1., 'action'),
      rewards=specs.Array((), np.float32, 'reward'),
      discounts=specs.BoundedArray((), np.float32, 0., 1., 'discount'))


def _batch(spec: Any, batch_size: int, rng: np.random.Generator) -> Any:
  def sample(leaf: specs.Array) -> tf.Tensor:
    shape = (batch_size,) + leaf.shape
    if leaf.dtype == np.uint8:
      return tf.constant(rng.integers(0, 256, size=shape, dtype=np.uint8))
    return tf.constant(rng.uniform(-1., 1., size=shape).astype(leaf.dtype))
  return tf.nest.map_structure(sample, spec)


def bench(torso: str, keys, image_size: int, batch_size: int,
          iterations: int) -> Dict[str, Any]:
  """Builds one network set and times its training-like step."""
  spec = networks.goal_conditioned_spec(_environment_spec(image_size))
  d4pg_networks = networks.make_networks(
      spec, torso=torso, observation_keys=keys, goal_conditioned=True)
  d4pg_networks.init(spec)
  encoder = d4pg_networks.observation_network
  policy = d4pg_networks.policy_network
  critic = d4pg_networks.critic_network
  variables = (encoder.trainable_variables + policy.trainable_variables +
               critic.trainable_variables)
  optimizer = snt.optimizers.Adam(1e-4)

  rng = np.random.default_rng(0)
  observation = _batch(spec.observations, batch_size, rng)
  action = _batch(spec.actions, batch_size, rng)
  target = tf.nn.softmax(tf.constant(
      rng.normal(size=(batch_size, 101)).astype(np.float32)))

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      embedding = encoder(observation)
      critic_loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
          labels=target, logits=critic(embedding, action).logits))
      frozen = tf.stop_gradient(embedding)
      policy_loss = -tf.reduce_mean(critic(frozen, policy(frozen)).mean())
      loss = critic_loss + policy_loss
    optimizer.apply(tape.gradient(loss, variables), variables)
    return loss

  start = time.perf_counter()
  step().numpy()
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(iterations):
    loss = step()
  loss.numpy()
  elapsed = time.perf_counter() - start
  return {
      'observation_keys': list(keys),
      'image_size': image_size if 'image' in keys else None,
      'iterations': iterations,
      'first_step_s': round(compile_s, 3),
      'step_s': round(elapsed / iterations, 4),
      'steps_per_s': round(iterations / elapsed, 3),
      'parameters': {
          'observation_network': networks.count_parameters(encoder),
          'policy_network': networks.count_parameters(policy),
          'critic_network': networks.count_parameters(critic),
          'total': networks.count_parameters(encoder) +
                   networks.count_parameters(policy) +
                   networks.count_parameters(critic),
      },
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_size', type=int, default=64)
  parser.add_argument('--image_size', type=int, default=128)
  parser.add_argument('--mlp_iterations', type=int, default=200)
  parser.add_argument('--impala_iterations', type=int, default=10)
  parser.add_argument('--paper_iterations', type=int, default=3)
  args = parser.parse_args()

  results = {
      'mlp': bench('mlp', ('features',), args.image_size, args.batch_size,
                   args.mlp_iterations),
      'impala': bench('impala', ('image',), args.image_size, args.batch_size,
                      args.impala_iterations),
      'paper_resnet': bench('paper_resnet', ('image',), args.image_size,
                            args.batch_size, args.paper_iterations),
  }
  print(json.dumps({
      'batch_size': args.batch_size,
      'goal_conditioned': True,
      'step': 'encoder+policy+critic forward, backward, Adam update',
      'tensorflow': tf.__version__,
      'cpu_count': len(os.sched_getaffinity(0)),
      'processor': platform.processor() or platform.machine(),
      'gpus': len(tf.config.list_physical_devices('GPU')),
      'results': results,
  }))


if __name__ == '__main__':
  main()
