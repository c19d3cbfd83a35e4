"""The program's node bodies, built in this process: seeds and evaluators.

Each node factory of `DistributedMetaMimic` runs here as a Launchpad node
would run it, against a real Reverb server holding the program's tables, the
committed demo sets and real MuJoCo environments. Whole programs run in
tests/program_test.py.
"""

import functools
import os

from acme.utils import counting
import numpy as np
import pytest
import reverb

from acme_metamimic import agent_distributed
from acme_metamimic import diagnostics
from acme_metamimic import presets
from acme_metamimic import seeding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_PATHS = {
    agent_distributed.TRAIN: os.path.join(ROOT, 'data',
                                          'demos_train_features'),
    agent_distributed.VALIDATION: os.path.join(ROOT, 'data',
                                               'demos_validation_features'),
}
PRESET = 'features'


def _definition(workdir, seed, imitation_policy='learned', **overrides):
  config = presets.make_config(
      PRESET, seed=seed, demo_curriculum=True, variable_update_period=100,
      evaluation_period_seconds=0., **overrides)
  return agent_distributed.DistributedMetaMimic(
      environment_factory=functools.partial(presets.make_environment, PRESET),
      network_factory=functools.partial(presets.make_networks, PRESET,
                                        config),
      demonstrations_factory=functools.partial(
          presets.load_demonstration_split, PRESET, DEMO_PATHS,
          max_episodes={agent_distributed.TRAIN: 5}),
      config=config, workdir=str(workdir),
      imitation_policy=imitation_policy)


@pytest.fixture(scope='module')
def replay():
  definition = _definition('/unused', seed=0)
  server = reverb.Server(definition.replay(), port=None)
  yield reverb.Client(f'localhost:{server.port}')
  server.stop()


def _node(tmp_path_factory, replay, seed):
  """(imitation learner, imitation actor 0's and 1's loops) of a run seed."""
  definition = _definition(tmp_path_factory.mktemp(f'seed{seed}_'), seed)
  counter = counting.Counter()
  learner = definition.imitation_learner(replay, counter)
  actors = [definition.imitation_actor(replay, learner, counter, actor_id)
            for actor_id in (0, 1)]
  return learner, actors


def _values(arrays):
  """Every value of `arrays`, sorted: equal for the same weights in any order."""
  return np.sort(np.concatenate([np.ravel(a) for a in arrays]))


def _weights(learner):
  """The policy weights a learner gives its actors."""
  return _values(learner.get_variables(['policy'])[0])


def _first_episode(loop, steps=5):
  """The start's physics state and the first `steps` exploring actions."""
  environment, actor = loop._environment, loop._actor  # pylint: disable=protected-access
  timestep = environment.reset()
  state = environment.get_state().copy()
  actions = []
  for _ in range(steps):
    action = actor.select_action(timestep.observation)
    actions.append(action)
    timestep = environment.step(action)
  return state, np.stack(actions)


@pytest.fixture(scope='module')
def nodes(tmp_path_factory, replay):
  """Per run seed: learner weights and each actor's first episode.

  Seed 0 is built twice, in the order a second run's processes would.
  """
  built = {}
  for name, seed in (('a', 0), ('b', 0), ('c', 1)):
    learner, loops = _node(tmp_path_factory, replay, seed)
    built[name] = dict(weights=_weights(learner),
                       episodes=[_first_episode(loop) for loop in loops])
  return built


def test_node_seeds_are_distinct_per_node_index_stream_and_run():
  seeds = {seeding.node_seed(run, node, index, stream)
           for run in (0, 1) for node in ('imitation_actor', 'task_actor')
           for index in (0, 1)
           for stream in (seeding.ENVIRONMENT, seeding.DEMOS)}
  assert len(seeds) == 16
  assert all(0 <= seed < 2**31 for seed in seeds)
  # The same in every process: no salted hash.
  assert seeding.node_seed(3, 'evaluator', 2) == seeding.node_seed(
      3, 'evaluator', 2)


def test_run_seed_seeds_network_initialisation(nodes):
  np.testing.assert_array_equal(nodes['a']['weights'], nodes['b']['weights'])
  assert not np.allclose(nodes['a']['weights'], nodes['c']['weights'])


def test_run_seed_seeds_start_states_and_exploration(nodes):
  for (state_a, actions_a), (state_b, actions_b) in zip(
      nodes['a']['episodes'], nodes['b']['episodes']):
    np.testing.assert_array_equal(state_a, state_b)
    np.testing.assert_array_equal(actions_a, actions_b)
  for (state_a, actions_a), (state_c, actions_c) in zip(
      nodes['a']['episodes'], nodes['c']['episodes']):
    # Another demo or curriculum frame, and other exploration noise.
    assert not np.allclose(state_a, state_c)
    assert not np.allclose(actions_a, actions_c)
  # Two actors of one run follow their own streams.
  (state_0, actions_0), (state_1, actions_1) = nodes['a']['episodes']
  assert not np.allclose(state_0, state_1)
  assert not np.allclose(actions_0, actions_1)


class _PublishingLearner:
  """A learner's variable source whose policy changes between rounds."""

  def __init__(self, learner):
    self._learner = learner
    self.version = 0
    self.fetches = 0

  def publish(self):
    """New target-policy weights, as a learner's next steps would make."""
    self.version += 1
    for variable in self._learner._target_policy_network.variables:  # pylint: disable=protected-access
      variable.assign(variable + 0.01 * self.version)

  def get_variables(self, names):
    self.fetches += 1
    return self._learner.get_variables(names)


class _RecordingEnvironment:
  """Wraps an evaluator's environment; notes the acting weights each step."""

  def __init__(self, environment, actor, record):
    self._environment, self._actor, self._record = environment, actor, record

  def step(self, action):
    self._record.append(_values(self._actor._policy._weights))  # pylint: disable=protected-access
    return self._environment.step(action)

  def __getattr__(self, name):
    return getattr(self._environment, name)


def test_evaluator_acts_each_episode_with_the_weights_of_its_start(
    tmp_path, replay):
  definition = _definition(tmp_path, seed=0)
  learner = definition.imitation_learner(replay, counting.Counter())
  source = _PublishingLearner(learner)
  evaluator = definition.evaluator(source, None, counting.Counter())
  loops_and_actors = evaluator._loops_and_actors  # pylint: disable=protected-access
  assert len(loops_and_actors) == 2  # Held-out and training imitation.
  records = []
  for loop, actor in loops_and_actors:
    record = []
    loop._environment = _RecordingEnvironment(loop._environment, actor,  # pylint: disable=protected-access
                                              record)
    records.append(record)
  for _ in range(3):
    source.publish()
    published = _weights(learner)
    evaluator.run_round()
    for record in records:
      assert len(record) > 100  # Whole demos are followed.
      for weights in record:
        np.testing.assert_allclose(weights, published, rtol=0, atol=1e-6)
      record.clear()
  # One fetch when each actor was built, then one per episode.
  assert source.fetches == 2 + 3 * 2


def test_imitation_learner_takes_the_imitation_discount(tmp_path, replay):
  definition = _definition(tmp_path, seed=0, imitation_discount=0.5)
  counter = counting.Counter()
  imitation_learner = definition.imitation_learner(replay, counter)
  task_learner = definition.task_learner(replay, counter)
  assert imitation_learner._discount == 0.5  # pylint: disable=protected-access
  assert task_learner._discount == 0.99  # pylint: disable=protected-access


def test_tracker_fed_imitation_actors_act_with_the_tracker_and_fill_replay(
    tmp_path, replay):
  # Issue 33's ablation: the joint tracker stands in for the imitation
  # policy; the adder and tables are the same.
  definition = _definition(tmp_path, seed=0, imitation_policy='joint_tracker',
                           sigma=0., sigma_per_dimension=None)
  assert definition.signature()['imitation_policy'] == 'joint_tracker'
  loop = definition.imitation_actor(replay, None, counting.Counter(), 0)
  environment, actor = loop._environment, loop._actor  # pylint: disable=protected-access
  tracker = diagnostics.joint_tracker_policy(environment)
  timestep = environment.reset()
  np.testing.assert_array_equal(actor.select_action(timestep.observation),
                                tracker(timestep.observation))
  inserted = lambda: replay.server_info()[
      'imitation'].rate_limiter_info.insert_stats.completed
  before = inserted()
  loop.run(num_episodes=1)
  steps = environment.episode_metrics['steps']
  # One item per step, and n_step - 1 more at the episode's end.
  assert inserted() - before == steps + definition._config.n_step - 1  # pylint: disable=protected-access
  with pytest.raises(ValueError, match='imitation_policy'):
    _definition(tmp_path, seed=0, imitation_policy='demo_actions')


def test_task_actors_take_their_own_per_dimension_noise(tmp_path, replay):
  # MetaMimicConfig.task_sigma_per_dimension (Session 26's probe): no noise
  # on the task actors' fingers, while the imitation actors keep sigma 0.3
  # on every dimension.
  definition = _definition(tmp_path, seed=0, sigma=0.3,
                           task_sigma_per_dimension=(0.3,) * 6 + (0.,) * 3)
  for node, fingers_vary in ((definition.task_actor, False),
                             (definition.imitation_actor, True)):
    loop = node(replay, None, counting.Counter(), 0)
    observation = loop._environment.reset().observation  # pylint: disable=protected-access
    actions = np.stack([loop._actor.select_action(observation)  # pylint: disable=protected-access
                        for _ in range(50)])
    assert actions[:, :6].std(axis=0).min() > 0.1
    assert (actions[:, 6:].std(axis=0).min() > 0.1) == fingers_vary
  with pytest.raises(ValueError, match='task_sigma_per_dimension'):
    _definition(tmp_path, seed=0, task_sigma_per_dimension=(-0.1,) * 9)
