"""launch/compare_baselines.py rejects ablation flags it cannot run, before
training anything."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('flags,message', [
    (['--demo_counts=5,50'], '--demo_counts=5,50: every count must be at '
     'least --num_episodes=10'),
    (['--demo_counts=ten'], '--demo_counts: invalid literal'),
    (['--presets=features,vision'], "use the environments ['features', "
     "'vision']"),
    (['--presets=features_mlp2'], "--presets: Unknown preset 'features_mlp2'"),
    (['--baselines=dqn'], '--baselines:'),
])
def test_bad_flags_fail_before_any_run(tmp_path, flags, message):
  root = tmp_path / 'root'
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'compare_baselines.py'),
       f'--root={root}', *flags],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert message in result.stderr, result.stderr[-2000:]
  assert not root.exists()
