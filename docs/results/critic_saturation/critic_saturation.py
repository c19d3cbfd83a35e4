"""Exploratory: does the imitation critic saturate at Vmax? (issue 13)

Not project code: kept beside its output so the figures can be reproduced.

    MUJOCO_GL=egl .venv/bin/python docs/results/critic_saturation/critic_saturation.py \
        <workdir> <number of held-out demos>

Restores the imitation learner's policy, observation and critic networks from
a workdir, follows held-out style-B demos greedily without early termination,
and compares the critic's Q(o, a) (mean of its categorical distribution, and
the mass on the top atom) with the discounted imitation return-to-go actually
earned from each state (gamma 0.99, eq. 2 reward as the learner sees it).
"""
import json
import sys

from acme import specs
import numpy as np
import tensorflow as tf

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic.demonstrations import scripted
from acme_metamimic.environments import imitation

workdir, num_demos = sys.argv[1], int(sys.argv[2])
config = config_lib.features_config(early_termination='none',
                                    **evaluation.network_overrides(workdir))
builder = builder_lib.MetaMimicBuilder(config)
environment = presets.make_environment('features', seed=0)
spec = specs.make_environment_spec(environment)
nets, _ = evaluation.build_networks('features', config, spec)
latest = tf.train.latest_checkpoint(
    evaluation.checkpoint_directory(workdir, evaluation.IMITATION_LEARNER))
steps = tf.Variable(0, dtype=tf.int32)
status = tf.train.Checkpoint(learner={
    'policy': nets.policy_network, 'observation': nets.observation_network,
    'critic': nets.critic_network, 'num_steps': steps}).restore(latest)
status.assert_existing_objects_matched().expect_partial()
imitation_spec = imitation.imitation_environment_spec(spec)
policy = evaluation.make_greedy_policy(nets, imitation_spec)
reward = builder.make_imitation_reward()
demos = [scripted.record_demonstration(
    presets.make_environment('features', 10_000 + i),
    scripted.ScriptedDemonstrator('B', seed=10_000 + i), episode_id=i)
         for i in range(num_demos)]
q_all, top_all, rtg_all, rew_all = [], [], [], []
for demo in demos:
  env = builder.make_imitation_environment(
      presets.make_environment('features', 1), [demo])
  timestep = env.reset_to_demo(demo, 0)
  observations, actions, rewards = [], [], []
  t = 0
  while not timestep.last():
    action = policy(timestep.observation)
    observations.append(timestep.observation)
    actions.append(action)
    timestep = env.step(action)
    t += 1
    rewards.append(reward(timestep.observation[imitation.OBSERVATION],
                          demo.frame(t)))
  batch = tf.nest.map_structure(lambda *x: tf.constant(np.stack(x)),
                                *observations)
  embedded = nets.observation_network(batch)
  distribution = nets.critic_network(embedded, tf.constant(np.stack(actions)))
  q = distribution.mean().numpy()
  probs = tf.nn.softmax(distribution.logits).numpy()
  rtg = np.zeros(len(rewards))
  running = 0.
  for i in reversed(range(len(rewards))):
    running = rewards[i] + config.discount * running
    rtg[i] = running
  q_all.append(q)
  top_all.append(probs[:, -1])
  rtg_all.append(rtg)
  rew_all.append(np.asarray(rewards))
q, top, rtg = map(np.concatenate, (q_all, top_all, rtg_all))
print(json.dumps(dict(
    workdir=workdir, learner_steps=int(steps.numpy()), demos=num_demos,
    states=int(len(q)), vmax=config.vmax,
    q_mean=float(q.mean()), q_max=float(q.max()),
    q_share_above_90=float(np.mean(q > 90.)),
    top_atom_mass_mean=float(top.mean()), top_atom_mass_max=float(top.max()),
    return_to_go_mean=float(rtg.mean()), return_to_go_max=float(rtg.max()),
    return_to_go_share_above_100=float(np.mean(rtg > 100.)),
    reward_per_step_mean=float(np.mean(np.concatenate(rew_all))),
), indent=1))
