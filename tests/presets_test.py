"""Presets: the network-ablation presets and nested demo subsets."""

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys

from acme import specs
from acme_metamimic import config as config_lib
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic.demonstrations import dataset
from acme_metamimic.demonstrations import recording
from acme_metamimic.environments import observation_scales
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SPEC = importlib.util.spec_from_file_location(
    'observation_scales_script',
    os.path.join(ROOT, 'launch', 'observation_scales.py'))
observation_scales_script = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(observation_scales_script)


@pytest.fixture(scope='module')
def demo_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('demos') / 'train')
  recording.record_demonstrations('A', 3, 'features', 0, path, progress=False)
  return path


def _kernel_shapes(module):
  return sorted(tuple(v.shape.as_list()) for v in module.trainable_variables
                if len(v.shape) == 2)


def test_task_networks_without_joint_velocities():
  """`task_joint_velocities=False` narrows the task torso's input by 9.

  The imitation networks keep every input; a preset whose networks see no
  joint velocities (vision) refuses the field by name.
  """
  environment = presets.make_environment('features', seed=0)
  spec = specs.make_environment_spec(environment)
  inputs = {}
  for velocities in (True, False):
    config = config_lib.features_config(task_joint_velocities=velocities)
    imitation, task = evaluation.build_networks('features', config, spec)
    inputs[velocities] = (
        _kernel_shapes(imitation.observation_network)[0][0],
        _kernel_shapes(task.observation_network)[0][0])
  assert inputs[True][0] == inputs[False][0]
  assert inputs[True][1] - inputs[False][1] == 9
  with pytest.raises(ValueError, match='task_joint_velocities'):
    presets.make_networks(
        'vision', config_lib.paper_config(task_joint_velocities=False),
        spec, goal_conditioned=False)


@pytest.mark.parametrize('preset,width', [('features_mlp64', 64),
                                          ('features', 256),
                                          ('features_mlp1024', 1024)])
def test_width_presets_differ_only_in_layer_widths(preset, width):
  environment = presets.make_environment(preset, seed=0)
  assert presets.get(preset).environment == 'features'
  spec = specs.make_environment_spec(environment)
  imitation, task = evaluation.build_networks(
      preset, config_lib.features_config(), spec)
  for networks in (imitation, task):
    policy_shapes = _kernel_shapes(networks.policy_network)
    # Policy MLP: width x width hidden layer, then width -> 9 actions.
    assert (width, width) in policy_shapes
    assert (width, 9) in policy_shapes
    torso_inputs = [shape[0] for shape in _kernel_shapes(
        networks.observation_network)]
    assert _kernel_shapes(networks.observation_network) == [
        (torso_inputs[0], width)]
  # The imitation torso also sees the goal, so its input is twice as wide.
  assert (_kernel_shapes(imitation.observation_network)[0][0] ==
          2 * _kernel_shapes(task.observation_network)[0][0])


def _random_observation_and_goal(spec):
  """Two batches of 2 random 'body' and 'features' vectors (N(0, 1))."""
  rng = np.random.default_rng(0)
  batch = lambda key: rng.normal(
      size=(2, *spec.observations[key].shape)).astype(np.float32)
  return tuple({key: batch(key) for key in ('body', 'features')}
               for _ in range(2))


def test_goal_delta_scale_feeds_the_imitation_torso_scaled_differences():
  # MetaMimicConfig.goal_delta_scale: vector goals g enter the imitation
  # networks as s * (g - o); the task networks have no goal.
  environment = presets.make_environment('features', seed=0)
  spec = specs.make_environment_spec(environment)
  scale = 10.
  # Without the skip (features_config() has it), so that the embeddings
  # compare.
  with_delta, task = evaluation.build_networks(
      'features', config_lib.features_config(
          goal_delta_scale=scale, goal_delta_skip=False), spec)
  plain, _ = evaluation.build_networks('features', config_lib.features_config(
      goal_delta_scale=None, goal_delta_skip=False), spec)
  for mine, theirs in zip(plain.observation_network.variables,
                          with_delta.observation_network.variables):
    mine.assign(theirs)
  observation, goal = _random_observation_and_goal(spec)
  scaled = {key: scale * (goal[key] - observation[key]) for key in goal}
  embed = lambda networks, goals: networks.observation_network(
      dict(observation=observation, goal=goals)).numpy()
  np.testing.assert_allclose(embed(with_delta, goal), embed(plain, scaled),
                             rtol=1e-5, atol=1e-5)
  assert not np.allclose(embed(with_delta, goal), embed(plain, goal),
                         atol=1e-3)
  # Same variables, so a checkpoint restores either way; the task networks
  # are those of the preset.
  assert _kernel_shapes(with_delta.observation_network) == _kernel_shapes(
      plain.observation_network)
  assert task.observation_network._goal_delta_scale is None  # pylint: disable=protected-access


def test_goal_delta_skip_appends_the_scaled_differences_to_the_embedding():
  # MetaMimicConfig.goal_delta_skip: the critic's first layer sees
  # s * (g - o) beside the action, and the policy's sees it too.
  environment = presets.make_environment('features', seed=0)
  spec = specs.make_environment_spec(environment)
  scale = 10.
  skip, task = evaluation.build_networks('features', config_lib.features_config(
      goal_delta_scale=scale, goal_delta_skip=True), spec)
  delta, _ = evaluation.build_networks(
      'features', config_lib.features_config(
          goal_delta_scale=scale, goal_delta_skip=False), spec)
  for mine, theirs in zip(delta.observation_network.variables,
                          skip.observation_network.variables):
    mine.assign(theirs)
  observation, goal = _random_observation_and_goal(spec)
  inputs = dict(observation=observation, goal=goal)
  embedding = skip.observation_network(inputs).numpy()
  torso = delta.observation_network(inputs).numpy()
  scaled = np.concatenate([scale * (goal[key] - observation[key])
                           for key in ('body', 'features')], axis=-1)
  np.testing.assert_allclose(embedding, np.concatenate([torso, scaled], -1),
                             rtol=1e-5, atol=1e-5)
  # The critic's first layer takes the embedding and the action.
  (critic_inputs, _), = [shape for shape in _kernel_shapes(
      skip.critic_network) if shape[0] == embedding.shape[1] + 9]
  assert critic_inputs == torso.shape[1] + scaled.shape[1] + 9
  assert task.observation_network._goal_delta_skip is False  # pylint: disable=protected-access
  with pytest.raises(ValueError, match='goal_delta_skip needs'):
    config_lib.features_config(goal_delta_scale=None, goal_delta_skip=True)


def test_imitation_vmax_sets_the_imitation_critics_support_only():
  # MetaMimicConfig.imitation_vmax: the imitation critic's atoms span
  # [vmin, imitation_vmax]; the task critic keeps [vmin, vmax].
  environment = presets.make_environment('features', seed=0)
  spec = specs.make_environment_spec(environment)
  config = config_lib.features_config(imitation_vmax=200.)
  imitation, task = evaluation.build_networks('features', config, spec)
  support = lambda networks: networks.critic_network._layers[-1]._values.numpy()  # pylint: disable=protected-access
  np.testing.assert_allclose(support(imitation),
                             np.linspace(0., 200., config.num_atoms),
                             rtol=1e-6)
  np.testing.assert_allclose(support(task),
                             np.linspace(0., 100., config.num_atoms),
                             rtol=1e-6)
  paper_imitation, _ = evaluation.build_networks(
      'features', config_lib.features_config(imitation_vmax=None), spec)
  assert support(paper_imitation)[-1] == config.vmax
  with pytest.raises(ValueError, match='imitation_vmax'):
    config_lib.features_config(imitation_vmax=0.)


def test_observation_normalization_feeds_both_torsos_clipped_z_scores():
  # MetaMimicConfig.observation_normalization: every vector key, observation
  # and goal alike, enters as clip((x - offset) / scale, +-10) with the
  # generated demo statistics; the variables are those of the plain networks.
  environment = presets.make_environment('features', seed=0)
  spec = specs.make_environment_spec(environment)
  normalized = evaluation.build_networks(
      'features', config_lib.features_config(observation_normalization=True),
      spec)
  plain = evaluation.build_networks('features', config_lib.features_config(),
                                    spec)
  rng = np.random.default_rng(0)
  keys = presets.get('features').observation_keys
  z_score = lambda key, x: np.clip(
      (x - np.float32(observation_scales.NORMALIZATION[key][0])) /
      np.float32(observation_scales.NORMALIZATION[key][1]), -10., 10.)
  # Real frames, and one far outside the demos (joint angles of 50 rad).
  frames = [environment.reset().observation for _ in range(2)]
  frames[1] = dict(frames[1], body=frames[1]['body'] + 50.)
  observation = {k: np.stack([f[k] for f in frames]) for k in keys}
  goal = {k: v + rng.normal(0., 0.05, v.shape).astype(np.float32)
          for k, v in observation.items()}
  for (mine, theirs), goal_conditioned in zip(zip(normalized, plain),
                                              (True, False)):
    assert _kernel_shapes(mine.observation_network) == _kernel_shapes(
        theirs.observation_network)
    for variable, source in zip(theirs.observation_network.variables,
                                mine.observation_network.variables):
      variable.assign(source)
    if goal_conditioned:
      inputs = dict(observation=observation, goal=goal)
      expected = dict(observation={k: z_score(k, v)
                                   for k, v in observation.items()},
                      goal={k: z_score(k, v) for k, v in goal.items()})
    else:
      inputs = observation
      expected = {k: z_score(k, v) for k, v in observation.items()}
    np.testing.assert_allclose(mine.observation_network(inputs).numpy(),
                               theirs.observation_network(expected).numpy(),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(mine.observation_network(inputs).numpy(),
                           theirs.observation_network(inputs).numpy(),
                           atol=1e-3)
  assert np.max(np.abs(z_score('body', observation['body'][1]))) == 10.


def test_observation_scales_are_the_demos_statistics(demo_dir):
  demos = presets.load_demonstrations('features', demo_dir)
  statistics = observation_scales_script.demo_statistics(demos, ('body',))
  frames = np.concatenate([d.observations['body'] for d in demos])
  offset, scale = statistics['body']
  np.testing.assert_allclose(offset, frames.mean(axis=0), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(
      scale, np.maximum(frames.std(axis=0),
                        observation_scales_script.SCALE_FLOOR), rtol=1e-5)
  # The finger velocities of a scripted demo rest at 0 most of the time; the
  # floor keeps every scale positive.
  assert min(scale) >= observation_scales_script.SCALE_FLOOR
  # The generated module holds exactly these numbers.
  text = observation_scales_script.module_text(statistics, demo_dir,
                                               len(demos), len(frames))
  namespace = {}
  exec(compile(text, 'observation_scales.py', 'exec'), namespace)  # pylint: disable=exec-used
  assert namespace['NORMALIZATION'] == {'body': statistics['body']}
  # The committed module covers every vector key of the features preset.
  environment = presets.make_environment('features', seed=0)
  for key, value in environment.observation_spec().items():
    offset, scale = observation_scales.NORMALIZATION[key]
    assert len(offset) == len(scale) == value.shape[0], key
    assert min(scale) >= observation_scales_script.SCALE_FLOOR


def test_evaluation_rebuilds_a_runs_network_fields_only(tmp_path):
  assert evaluation.network_overrides(str(tmp_path)) == {}  # No run.json.
  (tmp_path / 'run.json').write_text(json.dumps(dict(
      preset='features', config_overrides=dict(
          goal_delta_scale=10., vmax=400., feature_distance_scale=50.,
          early_termination='none', observation_normalization=True))))
  # Reward and termination overrides are left out: every run is measured
  # with the preset's eq. 2. A run.json from before `network_config` was
  # recorded had the paper's encoding under its overrides.
  assert evaluation.network_overrides(str(tmp_path)) == dict(
      goal_delta_scale=10., goal_delta_skip=False, vmax=400.,
      observation_normalization=True, task_joint_velocities=True)
  # Since then, every network field's value is recorded and read back.
  recorded = {name: getattr(config_lib.features_config(), name)
              for name in config_lib.NETWORK_FIELDS}
  (tmp_path / 'run.json').write_text(json.dumps(dict(
      preset='features', config_overrides=dict(vmax=400.),
      network_config=dict(recorded, vmax=400.))))
  read = evaluation.network_overrides(str(tmp_path))
  assert read == json.loads(json.dumps(dict(recorded, vmax=400.)))
  config = config_lib.features_config(**read)
  assert {name: getattr(config, name) for name in read} == dict(
      recorded, vmax=400.)
  # A field added since, which an older network_config does not name, reads
  # back as every run had it before it existed.
  older = {name: value for name, value in recorded.items()
           if name != 'task_joint_velocities'}
  (tmp_path / 'run.json').write_text(json.dumps(dict(
      preset='features', network_config=older)))
  assert evaluation.network_overrides(str(tmp_path)) == json.loads(
      json.dumps(dict(older, task_joint_velocities=True)))


def test_ablation_presets_read_their_environments_demo_sets(demo_dir):
  full = presets.load_demonstrations('features_mlp64', demo_dir)
  assert len(full) == 3
  with pytest.raises(dataset.DemonstrationError, match='preset'):
    presets.load_demonstrations('vision_impala', demo_dir)


def test_demo_split_keeps_the_first_demos(demo_dir):
  paths = {'train': demo_dir, 'validation': demo_dir}
  full = presets.load_demonstration_split('features', paths, 'train')
  subset = presets.load_demonstration_split(
      'features', paths, 'train', max_episodes={'train': 2})
  validation = presets.load_demonstration_split(
      'features', paths, 'validation', max_episodes={'train': 2})
  assert len(full) == 3 and len(subset) == 2 and len(validation) == 3
  for kept, original in zip(subset, full):
    np.testing.assert_array_equal(kept.physics_states,
                                  original.physics_states)


def test_run_local_rejects_more_training_demos_than_the_set_holds(
    demo_dir, tmp_path):
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'run_local.py'),
       f'--workdir={tmp_path}', f'--demos={demo_dir}',
       f'--validation_demos={demo_dir}', '--make_demos=false',
       '--max_train_demos=5'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert (f'--max_train_demos=5, but {demo_dir} holds only 3 demos.' in
          result.stderr), result.stderr[-2000:]


@pytest.mark.parametrize('flags,expected', [
    # data/ once held the seed-1 sets of whichever run found it empty.
    (['--demo_seed=1'], "metadata.json: seed 0, but this run records --demos "
                        'with style A and seed 1 (--demo_seed=1).'),
    # A style-A set where the held-out style-B set belongs.
    (['--validation_demos={demos}'],
     "metadata.json: style 'A', but this run records --validation_demos with "
     'style B and seed 10000 (--demo_seed=0).'),
])
def test_run_local_refuses_a_demo_set_it_would_record_otherwise(
    demo_dir, tmp_path, flags, expected):
  workdir, validation = tmp_path / 'workdir', tmp_path / 'validation'
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'run_local.py'),
       f'--workdir={workdir}', f'--demos={demo_dir}',
       f'--validation_demos={validation}',
       *[flag.format(demos=demo_dir) for flag in flags]],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert expected in result.stderr, result.stderr[-2000:]
  assert '--make_demos=false to use it as it is' in result.stderr
  # Refused before the workdir was made or a demo recorded.
  assert not workdir.exists() and not validation.exists()


# Builds run_local's program definition for every preset in a fresh process
# (run_local's absl flags would clash with other scripts' in this one) and
# prints the config that each node body reads: the definition's own, its
# builder's (adders, actors, learners, environments) and the network
# factory's.
_NODE_CONFIGS = r'''
import dataclasses, json, sys
sys.path.insert(0, 'launch')
from absl import flags
import run_local
from acme_metamimic import presets
configs = {}
for preset in sorted(presets.PRESETS):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['run_local', f'--preset={preset}'])
  definition = run_local.make_program_definition('/unused', 2, 1)
  configs[preset] = [dataclasses.asdict(config) for config in (
      definition._config, definition._builder.config,
      definition._network_factory.args[1])]
print(json.dumps(configs))
'''


def test_run_local_gives_every_node_its_presets_config():
  result = subprocess.run([sys.executable, '-c', _NODE_CONFIGS], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  configs = json.loads(result.stdout.strip().splitlines()[-1])
  assert set(configs) == set(presets.PRESETS)
  for preset, (program, builder, networks) in configs.items():
    # run_local's own choices, the same for every preset.
    expected = json.loads(json.dumps(dataclasses.asdict(presets.make_config(
        preset, num_imitation_actors=2, num_task_actors=1, seed=0,
        demo_curriculum=False, variable_update_period=100,
        learner_jit_compile=True))))
    assert program == expected, preset
    # The builder's tables are named by it; everything else is the same.
    assert builder == dict(expected, replay_table_name='task'), preset
    assert networks == expected, preset
  features, vision = configs['features'][0], configs['vision'][0]
  # The CPU preset's departures, and the paper's values for vision.
  assert (features['early_termination'], features['curriculum_max_step'],
          features['max_replay_size'], features['policy_learning_rate']) == (
              'reward', 100, 100_000, 2e-4)
  assert (vision['early_termination'], vision['curriculum_max_step'],
          vision['max_replay_size']) == ('hand_to_target', 300, 1_000_000)
  assert 5e-5 <= vision['policy_learning_rate'] <= 2e-4
  assert vision['policy_learning_rate'] != 2e-4
  for preset in presets.PRESETS:
    assert configs[preset][0] == configs[
        'vision' if preset.startswith('vision') else 'features'][0]
