"""launch/compare_baselines.py rejects ablation flags it cannot run, before
training anything."""

import os
import subprocess
import sys

import pytest

from acme_metamimic import baselines

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('settings,message', [
    (dict(demo_counts=['5', '50']), '--demo_counts=5,50: every count must be '
     'at least --num_episodes=10'),
    (dict(demo_counts=['ten']), '--demo_counts: invalid literal'),
    (dict(preset_names=['features', 'vision']), "use the environments "
     "['features', 'vision']"),
    (dict(preset_names=['features_mlp2']),
     "--presets: Unknown preset 'features_mlp2'"),
    (dict(baseline_names=['dqn']), "--baselines: Unknown baseline 'dqn'"),
])
def test_bad_settings_are_named(settings, message):
  arguments = dict(baseline_names=['metamimic'], preset_names=['features'],
                   demo_counts=[], num_episodes=10)
  arguments.update(settings)
  with pytest.raises(ValueError) as error:
    baselines.check_comparison(**arguments)
  assert message in str(error.value)


def test_good_settings_give_the_demo_counts():
  assert baselines.check_comparison(
      ['metamimic', 'd4pg'], ['features', 'features_mlp64'], ['10', '50'],
      10) == [10, 50]


def test_bad_flags_fail_before_any_run(tmp_path):
  # The script itself, once (each run imports TensorFlow: ~18 s on 2 cores).
  root = tmp_path / 'root'
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'compare_baselines.py'),
       f'--root={root}', '--demo_counts=5,50'],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert ('--demo_counts=5,50: every count must be at least --num_episodes=10'
          in result.stderr), result.stderr[-2000:]
  assert not root.exists()
