"""MetaMimic replay, adder and learners against a real Reverb server."""

import functools

import acme
from acme import specs
from acme.adders import reverb as reverb_adders
from acme.agents.tf.d4pg import agent as d4pg_agent
import dm_env
import numpy as np
import pytest
import reverb
import tree

from acme_metamimic import agent as agent_lib
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import environments
from acme_metamimic import learning
from acme_metamimic import networks
from acme_metamimic.demonstrations import scripted
from acme_metamimic.environments import imitation

KEYS = ('body', 'features')
SMALL = dict(mlp_torso_sizes=(32,), policy_layer_sizes=(32,),
             critic_layer_sizes=(32,))


@pytest.fixture(scope='module')
def env():
  return environments.make_environment('features', seed=3)


@pytest.fixture(scope='module')
def demos(env):
  return [scripted.record_demonstration(
      env, scripted.ScriptedDemonstrator('A', seed=3), episode_id=i,
      include_actions=True) for i in range(2)]


def _server(builder, env):
  server = reverb.Server(
      builder.make_replay_tables(specs.make_environment_spec(env)), port=None)
  return server, reverb.Client(f'localhost:{server.port}')


def _add_zero_action_episode(adder, im_env, timestep):
  """Writes one imitation episode with zero actions, from `timestep` on."""
  adder.add_first(timestep)
  while not timestep.last():
    timestep = im_env.step(np.zeros(9, np.float32))
    adder.add(np.zeros(9, np.float32), timestep)


def _replay_with_one_episode(config, env, demo, num_steps):
  """Both tables on a new server, holding one zero-action imitation episode.

  Returns (builder, server, client, adder, imitation environment).
  """
  builder = builder_lib.MetaMimicBuilder(config)
  server, client = _server(builder, env)
  adder = builder.make_imitation_adder(client)
  im_env = builder.make_imitation_environment(
      env, [demo.prefix(num_steps)], seed=0)
  _add_zero_action_episode(adder, im_env, im_env.reset())
  return builder, server, client, adder, im_env


def _samples(client, table, num_samples=300):
  """Samples items as Acme transitions (structured by the table signature)."""
  return list(client.sample(table, num_samples=num_samples,
                            emit_timesteps=False,
                            unpack_as_table_signature=True))


def test_tables_share_one_server_with_specified_selectors(env):
  builder = builder_lib.MetaMimicBuilder(
      config_lib.features_config(max_replay_size=1234))
  server, client = _server(builder, env)
  info = client.server_info()
  assert set(info) == {'imitation', 'task'}
  assert info['imitation'].sampler_options.HasField('prioritized')
  assert info['imitation'].remover_options.HasField('heap')
  assert info['task'].sampler_options.uniform
  assert info['task'].remover_options.fifo
  assert info['imitation'].max_size == info['task'].max_size == 1234
  server.stop()


def test_adder_writes_imitation_reward_with_goal_and_task_reward_without(
    env, demos):
  config = config_lib.features_config(n_step=1, early_termination='none',
                                      min_replay_size=1)
  builder = builder_lib.MetaMimicBuilder(config)
  server, client = _server(builder, env)
  adder = builder.make_imitation_adder(client)
  demo = demos[0].prefix(12)
  im_env = builder.make_imitation_environment(env, [demo], seed=0)
  reward = builder.make_imitation_reward()
  rng = np.random.default_rng(0)
  timestep = im_env.reset()
  adder.add_first(timestep)
  expected = []
  for t in range(1, 13):
    # r_imitate pairs o_t with the demo's frame t, the goal shown at t - 1.
    goal = demo.frame(t)
    action = rng.uniform(-1, 1, 9).astype(np.float32)
    timestep = im_env.step(action)
    adder.add(action, timestep)
    expected.append((action, reward(timestep.observation['observation'], goal),
                     timestep.reward, goal))
  assert timestep.last()
  info = client.server_info()
  assert info['imitation'].current_size == 12
  assert info['task'].current_size == 12
  imitation_items = {s.data.action.tobytes(): s.data
                     for s in _samples(client, 'imitation')}
  task_items = {s.data.action.tobytes(): s.data for s in _samples(client, 'task')}
  assert len(imitation_items) == len(task_items) == 12
  for action, r_imitate, r_task, goal in expected:
    item = imitation_items[action.tobytes()]
    assert item.reward == pytest.approx(r_imitate, rel=1e-6)
    for key in goal:
      np.testing.assert_array_equal(item.observation['goal'][key], goal[key])
    task_item = task_items[action.tobytes()]
    assert task_item.reward == pytest.approx(r_task)
    assert set(task_item.observation) == set(env.observation_spec())
  server.stop()


def _item_contents(client, table):
  """Every distinct item of `table`, as (priority, flattened byte strings)."""
  contents = set()
  for sample in _samples(client, table, num_samples=2000):
    contents.add((sample.info.priority, tuple(
        np.asarray(leaf).tobytes() for leaf in tree.flatten(sample.data))))
  return contents


def _early_terminated_rollout(builder, env, demo, exact_steps):
  """An imitation episode that ends by early termination.

  It replays the demo's actions for `exact_steps` steps (tracking the demo
  exactly, eq. 2 = 17), then pushes the arm off it, so a cutoff just below 17
  ends the episode at step `exact_steps + 1`. Returns (timesteps, actions).
  """
  im_env = builder.make_imitation_environment(env, [demo], seed=0)
  timesteps, actions = [im_env.reset_to_demo(demo)], []
  while not timesteps[-1].last():
    actions.append(demo.actions[len(actions)] if len(actions) < exact_steps
                   else np.float32([1., -1., 1., 0., 0., 0., 0., 0., 0.]))
    timesteps.append(im_env.step(actions[-1]))
  assert im_env.episode_metrics['early_terminated'] == 1.
  assert len(actions) == exact_steps + 1
  return timesteps, actions


@pytest.mark.parametrize('early_termination', ['none', 'reward'])
def test_single_writer_adder_matches_two_stock_n_step_adders(
    env, demos, early_termination):
  """One write per step gives exactly the items of two stock Acme adders.

  The stock imitation adder is given the imitation discount and the stock
  task adder the task discount, so with early termination this also checks
  that each table gets its own discount.
  """
  # Without the hindsight goals a stock adder cannot write (learning_test
  # checks them).
  config = config_lib.features_config(n_step=3, discount=0.9,
                                      early_termination=early_termination,
                                      early_termination_cutoff=16.99,
                                      min_replay_size=1,
                                      inverse_dynamics_weight=0.)
  builder = builder_lib.MetaMimicBuilder(config)
  reward = builder.make_imitation_reward()
  if early_termination == 'none':
    im_env = builder.make_imitation_environment(
        env, [demos[0].prefix(9)], seed=0)
    rng = np.random.default_rng(1)
    timesteps, actions = [im_env.reset()], []
    while not timesteps[-1].last():
      actions.append(rng.uniform(-1, 1, 9).astype(np.float32))
      timesteps.append(im_env.step(actions[-1]))
  else:
    timesteps, actions = _early_terminated_rollout(builder, env, demos[0], 8)
  assert len(actions) == 9

  ours_server, ours = _server(builder, env)
  adder = builder.make_imitation_adder(ours)
  adder.add_first(timesteps[0])
  for action, timestep in zip(actions, timesteps[1:]):
    adder.add(action, timestep)

  stock_server, stock = _server(builder, env)
  stock_adder = lambda table, priority: reverb_adders.NStepTransitionAdder(
      stock, n_step=3, discount=0.9,
      priority_fns={table: lambda unused: priority})
  imitation_adder = stock_adder('imitation', config.initial_priority)
  task_adder = stock_adder('task', 1.)
  without_goal = lambda t: t._replace(observation=t.observation['observation'])
  imitation_adder.add_first(timesteps[0])
  task_adder.add_first(without_goal(timesteps[0]))
  for previous, action, timestep in zip(timesteps, actions, timesteps[1:]):
    r_imitate = reward(timestep.observation['observation'],
                       previous.observation['goal'])
    imitation_adder.add(action, timestep._replace(
        reward=np.float32(r_imitate),
        discount=timestep.discount['imitation']))
    task_adder.add(action, without_goal(timestep)._replace(
        discount=timestep.discount['task']))

  for table in ('imitation', 'task'):
    expected = _item_contents(stock, table)
    # (s0->s1), (s0->s2), (s0->s3), ..., (s6->s9), then (s7->s9), (s8->s9).
    assert len(expected) == 11
    assert _item_contents(ours, table) == expected, table
  ours_server.stop()
  stock_server.stop()


def test_task_adder_writes_what_d4pgs_adder_writes(env):
  """`make_adder` drops D4PG's constant priority function: same items."""
  config = config_lib.features_config(n_step=3, discount=0.9, min_replay_size=1)
  builder = builder_lib.MetaMimicBuilder(config)
  rng = np.random.default_rng(2)
  timesteps, actions = [env.reset()], []
  for _ in range(7):
    actions.append(rng.uniform(-1, 1, 9).astype(np.float32))
    timesteps.append(env.step(actions[-1]))
  # End the episode after 7 steps, as a time limit would.
  timesteps[-1] = timesteps[-1]._replace(step_type=dm_env.StepType.LAST)
  contents = []
  for make_adder in (builder.make_adder, functools.partial(
      d4pg_agent.D4PGBuilder.make_adder, builder)):
    server, client = _server(builder, env)
    adder = make_adder(client)
    adder.add_first(timesteps[0])
    for action, timestep in zip(actions, timesteps[1:]):
      adder.add(action, timestep)
    contents.append(_item_contents(client, 'task'))
    del adder
    server.stop()
  ours, stock = contents
  assert len(stock) == 7 + 2  # 7 ending at s_{t+n} or s_7, 2 shorter at the end.
  assert {priority for priority, _ in ours} == {1.}
  assert ours == stock


@pytest.mark.parametrize('imitation_gamma', [None, 0.5])
def test_early_termination_zeroes_imitation_discounts_but_task_bootstraps(
    env, demos, imitation_gamma):
  """Items of an episode cut by early termination, one by one (n = 3).

  Both tables hold the same 9 windows (s_i -> s_j). A task item keeps Acme's
  N-step discount gamma^(j-i-1) (the learner applies the last gamma, so a full
  window bootstraps with gamma^3); an imitation item whose window reaches the
  cut-off step has discount 0. With `imitation_discount`, imitation items
  take that gamma instead and task items keep theirs.
  """
  gamma = 0.9
  config = config_lib.features_config(n_step=3, discount=gamma,
                                      imitation_discount=imitation_gamma,
                                      early_termination='reward',
                                      early_termination_cutoff=16.99,
                                      min_replay_size=1)
  builder = builder_lib.MetaMimicBuilder(config)
  timesteps, actions = _early_terminated_rollout(builder, env, demos[0], 6)
  assert timesteps[-1].discount == {'imitation': 0., 'task': 1.}
  server, client = _server(builder, env)
  adder = builder.make_imitation_adder(client)
  adder.add_first(timesteps[0])
  for action, timestep in zip(actions, timesteps[1:]):
    adder.add(action, timestep)

  last = len(actions)  # 7: the step at which the cutoff fired.
  index_of = {a.tobytes(): i for i, a in enumerate(actions)}
  body = lambda observation: observation['body'].tobytes()
  frame_of = {body(t.observation['observation']): j
              for j, t in enumerate(timesteps)}
  for table in ('imitation', 'task'):
    windows = {}
    for sample in _samples(client, table):
      item = sample.data
      next_observation = (item.next_observation['observation']
                          if table == 'imitation' else item.next_observation)
      windows[(index_of[item.action.tobytes()],
               frame_of[body(next_observation)])] = float(item.discount)
    # (0->1), (0->2), (0->3), (1->4), ..., (4->7), (5->7), (6->7).
    assert sorted(windows) == [(0, 1), (0, 2)] + [
        (i, i + 3) for i in range(5)] + [(5, 7), (6, 7)]
    for (i, j), discount in windows.items():
      expected = gamma ** (j - i - 1)
      if table == 'imitation' and imitation_gamma is not None:
        expected = imitation_gamma ** (j - i - 1)
      if table == 'imitation' and j == last:
        expected = 0.
      assert discount == pytest.approx(expected, rel=1e-6), (table, i, j)
  server.stop()


def test_adder_rejects_non_finite_input_and_writes_nothing(env, demos):
  builder = builder_lib.MetaMimicBuilder(
      config_lib.features_config(n_step=1, min_replay_size=1))
  server, client = _server(builder, env)
  adder = builder.make_imitation_adder(client)
  im_env = builder.make_imitation_environment(env, demos, seed=0)
  timestep = im_env.reset()
  adder.add_first(timestep)
  timestep = im_env.step(np.zeros(9, np.float32))
  bad = timestep.observation['observation']['body'].copy()
  bad[0] = np.nan
  observation = dict(timestep.observation)
  observation['observation'] = dict(observation['observation'], body=bad)
  with pytest.raises(ValueError, match='NaN or inf'):
    adder.add(np.zeros(9, np.float32), timestep._replace(
        observation=observation))
  with pytest.raises(ValueError, match='NaN or inf'):
    adder.add(np.full(9, np.inf, np.float32), timestep)
  info = client.server_info()
  assert info['imitation'].current_size == info['task'].current_size == 0
  server.stop()


def test_lowest_priority_items_are_removed_first(env, demos):
  config = config_lib.features_config(n_step=1, max_replay_size=6,
                                      early_termination='none',
                                      min_replay_size=1)
  _, server, client, adder, im_env = _replay_with_one_episode(
      config, env, demos[0], 6)
  keys = sorted({s.info.key for s in _samples(client, 'imitation')})
  assert len(keys) == 6
  priorities = dict(zip(keys, [5., 0.5, 4., 0.1, 3., 2.]))
  client.mutate_priorities('imitation', updates=priorities)
  _add_zero_action_episode(adder, im_env,
                           im_env.reset_to_demo(demos[1].prefix(2)))
  remaining = {s.info.key for s in _samples(client, 'imitation')}
  assert len(remaining) == 6
  lowest_two = sorted(priorities, key=priorities.get)[:2]
  assert not remaining & set(lowest_two)
  assert set(priorities) - set(lowest_two) <= remaining
  server.stop()


def _make_agent(env, config):
  spec = specs.make_environment_spec(env)
  return agent_lib.MetaMimic(
      spec,
      networks.make_networks(spec, observation_keys=KEYS,
                             goal_conditioned=True, **SMALL),
      networks.make_networks(spec, observation_keys=KEYS, **SMALL),
      config, logger_factory=lambda label: acme.utils.loggers.NoOpLogger())


def test_imitation_learner_updates_priorities_and_task_table_gets_both(
    env, demos):
  config = config_lib.features_config(
      min_replay_size=32, batch_size=16, early_termination='none',
      samples_per_insert=16.)
  agent = _make_agent(env, config)
  im_env = agent.builder.make_imitation_environment(env, demos, seed=1)
  acme.EnvironmentLoop(im_env, agent, logger=acme.utils.loggers.NoOpLogger()
                      ).run(num_steps=80)
  sizes = agent.table_sizes()
  assert sizes['imitation'] > 0
  assert sizes['task'] == sizes['imitation']
  task_env = environments.make_environment('features', seed=9)
  acme.EnvironmentLoop(task_env, agent.task_actor,
                       logger=acme.utils.loggers.NoOpLogger()).run(num_steps=20)
  grown = agent.table_sizes()
  assert grown['imitation'] == sizes['imitation']
  assert grown['task'] >= sizes['task'] + 15

  priorities = [s.info.priority
                for s in _samples(agent.replay_client, 'imitation')]
  assert any(p != config.initial_priority for p in priorities)
  assert all(np.isfinite(p) and p > 0 for p in priorities)
  steps = agent.learner.imitation_learner._num_steps.numpy()
  assert steps > 0
  assert agent.learner.task_learner._num_steps.numpy() == steps


def test_priorities_are_written_for_every_kth_batch_only(env, demos):
  config = config_lib.features_config(
      n_step=1, batch_size=8, min_replay_size=1, early_termination='none',
      priority_update_period=3)
  builder, server, client, _, _ = _replay_with_one_episode(
      config, env, demos[0], 20)
  keys = {s.info.key for s in _samples(client, 'imitation')}
  assert len(keys) == 20

  spec = specs.make_environment_spec(env)
  online, target = [networks.make_networks(
      spec, observation_keys=KEYS, goal_conditioned=True, **SMALL)
                    for _ in range(2)]
  imitation_spec = imitation.imitation_environment_spec(spec)
  for net in (online, target):
    net.init(imitation_spec)
  iterator = learning.PriorityUpdatingIterator(
      builder.make_imitation_dataset_iterator(client), online, target,
      client.server_address, 'imitation', config.discount,
      update_period=config.priority_update_period)
  updated = []
  for _ in range(6):
    client.mutate_priorities(
        'imitation', updates={k: config.initial_priority for k in keys})
    next(iterator)
    # Untouched, all 20 items keep priority 100 and 300 uniform draws see
    # every one of them; updated items have |TD error| + epsilon instead
    # (and, being lower, may not be drawn at all).
    samples = _samples(client, 'imitation')
    updated.append(
        any(s.info.priority != config.initial_priority for s in samples) or
        len({s.info.key for s in samples}) < len(keys))
  assert updated == [True, False, False, True, False, False]
  server.stop()


def _replay_counts(agent):
  """(SGD steps of each learner, items ever inserted into each table)."""
  info = agent.replay_client.server_info()
  learners = {config_lib.IMITATION_TABLE: agent.learner.imitation_learner,
              config_lib.TASK_TABLE: agent.learner.task_learner}
  return {table: (int(learner._num_steps.numpy()),
                  info[table].rate_limiter_info.insert_stats.completed)
          for table, learner in learners.items()}


def test_agent_replays_the_configured_samples_per_insert(env, demos):
  """SGD steps x batch / inserts, measured past the warm-up, is the config's.

  Each learner `step()` runs `learner_steps_per_call` SGD steps, which the
  agent's `observations_per_step` must account for. With n_step=1 every
  observation inserts exactly one item into each table, and the measurement
  spans whole episodes (`EnvironmentLoop.run` finishes the last one), so the
  only slack is one learner call at either end of the window.
  """
  config = config_lib.features_config(
      n_step=1, batch_size=8, min_replay_size=8, samples_per_insert=16.,
      learner_steps_per_call=4, early_termination='none')
  agent = _make_agent(env, config)
  im_env = agent.builder.make_imitation_environment(
      env, [demo.prefix(25) for demo in demos], seed=1)
  loop = acme.EnvironmentLoop(im_env, agent,
                              logger=acme.utils.loggers.NoOpLogger())
  loop.run(num_steps=25)
  before = _replay_counts(agent)
  loop.run(num_steps=200)
  after = _replay_counts(agent)
  for table in before:
    steps, inserts = (b - a for a, b in zip(before[table], after[table]))
    assert inserts >= 200, table
    ratio = steps * config.batch_size / inserts
    assert ratio == pytest.approx(config.samples_per_insert, rel=0.1), table
