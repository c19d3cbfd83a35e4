"""Presets: the network-ablation presets and nested demo subsets."""

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
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def demo_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('demos') / 'train')
  recording.record_demonstrations('A', 3, 'features', 0, path, progress=False)
  return path


def _kernel_shapes(module):
  return sorted(tuple(v.shape.as_list()) for v in module.trainable_variables
                if len(v.shape) == 2)


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


def test_goal_delta_scale_feeds_the_imitation_torso_scaled_differences():
  # MetaMimicConfig.goal_delta_scale: vector goals g enter the imitation
  # networks as s * (g - o); the task networks have no goal.
  environment = presets.make_environment('features', seed=0)
  spec = specs.make_environment_spec(environment)
  scale = 10.
  with_delta, task = evaluation.build_networks(
      'features', config_lib.features_config(goal_delta_scale=scale), spec)
  plain, _ = evaluation.build_networks('features',
                                       config_lib.features_config(), spec)
  for mine, theirs in zip(plain.observation_network.variables,
                          with_delta.observation_network.variables):
    mine.assign(theirs)
  rng = np.random.default_rng(0)
  batch = lambda key: rng.normal(
      size=(2, *spec.observations[key].shape)).astype(np.float32)
  observation = {key: batch(key) for key in ('body', 'features')}
  goal = {key: batch(key) for key in ('body', 'features')}
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


def test_evaluation_rebuilds_a_runs_network_fields_only(tmp_path):
  assert evaluation.network_overrides(str(tmp_path)) == {}  # No run.json.
  (tmp_path / 'run.json').write_text(json.dumps(dict(
      preset='features', config_overrides=dict(
          goal_delta_scale=10., vmax=400., feature_distance_scale=50.,
          early_termination='none'))))
  # Reward and termination overrides are left out: every run is measured
  # with the preset's eq. 2.
  assert evaluation.network_overrides(str(tmp_path)) == dict(
      goal_delta_scale=10., vmax=400.)


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
