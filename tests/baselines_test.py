"""Baselines as configurations; D4PGfD's demo table and its batches."""

import os
import subprocess
import sys

import dm_env
import numpy as np
import pytest
import reverb

from acme import specs
from acme_metamimic import agent_distributed
from acme_metamimic import baselines
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import environments
from acme_metamimic import multihost
from acme_metamimic.demonstrations import dataset
from acme_metamimic.demonstrations import scripted
from dm_env import specs as dm_specs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_baselines_are_config_overrides():
  config = config_lib.features_config()
  assert baselines.get('d4pg').apply(config).num_imitation_actors == 0
  assert baselines.get('metamimic_curriculum').apply(config).demo_curriculum
  assert baselines.get('d4pgfd').demo_transitions
  assert baselines.get('d4pg_curriculum').task_curriculum
  assert baselines.get('metamimic').apply(config) == config
  with pytest.raises(ValueError):
    baselines.get('bc')


@pytest.mark.parametrize('name', ['d4pg', 'd4pgfd', 'd4pg_curriculum'])
def test_d4pg_baselines_have_the_papers_task_learner(name):
  # The features preset's task learner clones its batch's actions; the D4PG
  # baselines keep the paper's loss (D4PGfD's batches hold demo actions).
  config = config_lib.features_config(task_behaviour_cloning_weight=10.)
  assert baselines.get(name).apply(config).task_behaviour_cloning_weight == 0.
  assert baselines.get('metamimic').apply(
      config).task_behaviour_cloning_weight == 10.


def test_run_local_refuses_a_config_its_baseline_overrides(tmp_path):
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'run_local.py'),
       f'--workdir={tmp_path}', '--baseline=d4pgfd',
       '--num_imitation_actors=0', '--num_task_actors=1',
       '--config=task_behaviour_cloning_weight=10.'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert ('--config=task_behaviour_cloning_weight=10.0: --baseline=d4pgfd '
          'sets it to 0.0.' in result.stderr), result.stderr[-2000:]
  assert not any(tmp_path.iterdir())


def _spec():
  return specs.EnvironmentSpec(
      observations={'body': dm_specs.Array((2,), np.float32)},
      actions=dm_specs.BoundedArray((1,), np.float32, -1., 1.),
      rewards=dm_specs.Array((), np.float32),
      discounts=dm_specs.BoundedArray((), np.float32, 0., 1.))


def _demo(num_steps, episode_id, actions=True):
  return dataset.Demonstration(
      observations={'body': np.arange(2 * (num_steps + 1), dtype=np.float32
                                      ).reshape(-1, 2)},
      physics_states=np.zeros((num_steps + 1, 3)),
      rewards=np.full(num_steps, 0.5, np.float32), success=False,
      episode_id=episode_id,
      actions=(np.full((num_steps, 1), 0.25, np.float32) if actions else None))


def _demo_and_task_server(builder, spec):
  """The builder's demo and task tables (the imitation table needs a goal
  spec this toy spec has no use for) on an in-process server."""
  tables = [t for t in builder.make_replay_tables(spec, demo_table=True)
            if t.name != config_lib.IMITATION_TABLE]
  assert {t.name for t in tables} == {config_lib.TASK_TABLE,
                                      config_lib.DEMO_TABLE}
  server = reverb.Server(tables, port=None)
  return server, reverb.Client(f'localhost:{server.port}')


def test_insert_demonstrations_into_demo_table():
  spec = _spec()
  builder = builder_lib.MetaMimicBuilder(config_lib.features_config(n_step=2))
  server, client = _demo_and_task_server(builder, spec)
  demos = [_demo(3, 0), _demo(4, 1)]
  written = baselines.insert_demonstrations(demos,
                                            builder.make_demo_adder(client))
  assert written == 7
  # Acme's N-step adder also writes the N-1 shorter transitions that start an
  # episode (sizes 1..N-1 from its first step): T + N - 1 items per demo.
  info = client.server_info()
  assert info[config_lib.DEMO_TABLE].current_size == (3 + 1) + (4 + 1)
  assert baselines.num_demo_items(demos, n_step=2) == (3 + 1) + (4 + 1)
  assert info[config_lib.TASK_TABLE].current_size == 0
  sample = next(iter(client.sample(config_lib.DEMO_TABLE, num_samples=1,
                                   emit_timesteps=False,
                                   unpack_as_table_signature=True)))
  transition = sample.data
  np.testing.assert_allclose(transition[1], [0.25])     # demo action
  # N-step (n=2) reward of two 0.5 steps, or one at an episode's end.
  assert float(transition[2]) in (pytest.approx(0.5 + 0.99 * 0.5), 0.5)
  with pytest.raises(ValueError, match='include_actions'):
    baselines.insert_demonstrations([_demo(2, 2, actions=False)],
                                    builder.make_demo_adder(client))
  server.stop()


def test_demos_outlive_a_full_task_table_and_fill_demo_ratio_of_batches():
  """What the FIFO task table did to D4PGfD's demos cannot happen again.

  The task table (10 items) takes 220 actor items (20 episodes of 10 steps)
  and evicts all but the last 10; the demo table still holds every demo
  item, and the task learner's batches draw `demo_ratio` of their items
  from it.
  """
  spec = _spec()
  builder = builder_lib.MetaMimicBuilder(config_lib.features_config(
      n_step=2, max_replay_size=10, min_replay_size=1, batch_size=64,
      demo_ratio=0.25))
  server, client = _demo_and_task_server(builder, spec)
  demos = [_demo(3, 0), _demo(4, 1)]
  builder.check_demo_capacity(baselines.num_demo_items(demos, n_step=2))
  baselines.insert_demonstrations(demos, builder.make_demo_adder(client))
  actor_adder = builder.make_adder(client)
  actor_action = np.full((1,), -0.5, np.float32)
  for _ in range(20):
    actor_adder.add_first(dm_env.restart({'body': np.zeros(2, np.float32)}))
    for t in range(10):
      step = dm_env.truncation if t == 9 else dm_env.transition
      actor_adder.add(actor_action, step(
          np.float32(0.), {'body': np.full(2, t, np.float32)},
          np.float32(1.)))
  info = client.server_info()
  # 20 episodes of 10 steps: 20 x (10 + 2 - 1) items inserted, 10 kept.
  task_info = info[config_lib.TASK_TABLE]
  assert task_info.rate_limiter_info.insert_stats.completed == 220
  assert task_info.current_size == 10
  assert info[config_lib.DEMO_TABLE].current_size == 9
  assert builder.demo_batch_size() == 16
  iterator = builder.make_task_dataset_iterator(client, demos=True)
  for _ in range(5):
    sample = next(iterator)
    actions = sample.data[1].numpy()[:, 0]
    # 48 task items, then 16 demo items; the sample info is concatenated too.
    np.testing.assert_array_equal(actions, [-0.5] * 48 + [0.25] * 16)
    assert sample.info.key.shape == (64,)
  # More demo items than the table holds would evict the first ones.
  with pytest.raises(ValueError, match='max_replay_size=10'):
    builder.check_demo_capacity(11)
  server.stop()


@pytest.fixture(scope='module')
def jaco_demos():
  environment = environments.make_environment('features', seed=5)
  demonstrator = scripted.ScriptedDemonstrator('A', seed=5)
  episode = scripted.run_episode(environment, demonstrator)
  return [dataset.Demonstration(
      observations={k: np.stack([o[k] for o in episode['observations']])
                    for k in episode['observations'][0]},
      physics_states=episode['physics_states'], rewards=episode['rewards'],
      success=episode['success'], episode_id=0)]


def _program_definition(name, demos, workdir):
  baseline = baselines.get(name)
  config = baseline.apply(config_lib.features_config(
      num_imitation_actors=2, num_task_actors=1, curriculum_max_step=5))
  return agent_distributed.DistributedMetaMimic(
      environment_factory=lambda seed: environments.make_environment(
          'features', seed=seed),
      network_factory=lambda spec, goal_conditioned: None,
      demonstrations_factory=lambda split: demos,
      config=config, workdir=str(workdir), max_seconds=1., baseline=baseline,
      demo_transitions_factory=lambda: demos)


def test_each_baseline_program_has_only_its_nodes(jaco_demos, tmp_path):
  without_imitation = {'replay': 1, 'counter': 1, 'coordinator': 1,
                       'task_learner': 1, 'task_actor': 1, 'evaluator': 1}
  expected = {
      'metamimic': dict(without_imitation, imitation_learner=1,
                        imitation_actor=2),
      'd4pg': without_imitation, 'd4pgfd': without_imitation,
      'd4pg_curriculum': without_imitation}
  expected['metamimic_curriculum'] = expected['metamimic']
  expected['metamimic_task_curriculum'] = expected['metamimic']
  assert set(expected) == set(baselines.BASELINES)
  for name, sizes in expected.items():
    program = _program_definition(name, jaco_demos, tmp_path).build()
    assert multihost.group_sizes(program) == sizes, name


def test_config_must_have_the_baseline_applied(jaco_demos, tmp_path):
  with pytest.raises(ValueError, match='apply it'):
    agent_distributed.DistributedMetaMimic(
        environment_factory=environments.make_environment,
        network_factory=lambda spec, goal_conditioned: None,
        demonstrations_factory=lambda split: jaco_demos,
        config=config_lib.features_config(), workdir=str(tmp_path),
        baseline=baselines.get('d4pg'))


def test_d4pgfd_refuses_to_clone_its_demo_actions(jaco_demos, tmp_path):
  # task_behaviour_cloning_weight regresses the task policy on its batches'
  # actions; D4PGfD's batches hold demo actions, which no learned policy of
  # this project may copy.
  baseline = baselines.get('d4pgfd')
  with pytest.raises(ValueError, match='task_behaviour_cloning_weight'):
    agent_distributed.DistributedMetaMimic(
        environment_factory=environments.make_environment,
        network_factory=lambda spec, goal_conditioned: None,
        demonstrations_factory=lambda split: jaco_demos,
        # Not baseline.apply, which sets the weight back to 0.
        config=config_lib.features_config(num_imitation_actors=0,
                                          task_behaviour_cloning_weight=1.),
        workdir=str(tmp_path), baseline=baseline,
        demo_transitions_factory=lambda: jaco_demos)


@pytest.mark.parametrize(
    'name,without', [('d4pg_curriculum', 'd4pg'),
                     ('metamimic_task_curriculum', 'metamimic_curriculum')])
def test_curriculum_task_actors_start_from_demo_states(name, without,
                                                       jaco_demos, tmp_path):
  demo = jaco_demos[0]
  plain = _program_definition(without, jaco_demos, tmp_path).task_environment(0)
  assert not isinstance(plain, baselines.CurriculumStartEnvironment)
  environment = _program_definition(
      name, jaco_demos, tmp_path).task_environment(0)
  assert isinstance(environment, baselines.CurriculumStartEnvironment)
  starts = set()
  for _ in range(12):
    features = environment.reset().observation['features']
    # The start is exactly one of the demo's first curriculum_max_step frames.
    matches = [t for t in range(len(demo.physics_states)) if np.array_equal(
        features, demo.observations['features'][t])]
    assert matches and matches[0] < 5, matches
    starts.add(matches[0])
  assert len(starts) > 1


def test_baseline_program_splits_into_server_and_actor_hosts(jaco_demos,
                                                             tmp_path):
  definition = _program_definition('d4pg', jaco_demos, tmp_path)
  server = multihost.server_program(definition, base_port=18900)
  assert multihost.group_sizes(server) == {
      'replay': 1, 'counter': 1, 'coordinator': 1, 'task_learner': 1,
      'evaluator': 1}
  actors = multihost.actor_program(
      definition, multihost.exposed_addresses('10.0.0.1', 18900))
  assert multihost.group_sizes(actors) == {'task_actor': 1}


def test_only_learners_may_see_a_gpu(jaco_demos, tmp_path):
  for name in ('metamimic', 'd4pg'):
    program = _program_definition(name, jaco_demos, tmp_path).build()
    learners = {'imitation_learner', 'task_learner'} & set(program.groups)
    assert learners == ({'imitation_learner', 'task_learner'}
                        if name == 'metamimic' else {'task_learner'})
    for group in program.groups:
      with_gpu = agent_distributed.node_environment(group, learner_gpu=True)
      if group in learners:
        assert with_gpu == {'TF_FORCE_GPU_ALLOW_GROWTH': 'true'}, group
      else:
        assert with_gpu == {'CUDA_VISIBLE_DEVICES': ''}, group
      assert agent_distributed.node_environment(group, learner_gpu=False) == {
          'CUDA_VISIBLE_DEVICES': ''}, group
