"""Shared pytest set-up: quiet TensorFlow, headless MuJoCo."""

import os

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('MUJOCO_GL', 'egl')

# The suite runs on two pytest-xdist workers (launch/test.sh: -n 2 --dist
# loadgroup). Each test file stays on one worker (its module fixtures are made
# once), and the files that run whole Launchpad programs share one worker, so
# that two programs of ~8 processes never run at once on 2 cores. On 2 cores
# the suite used about one core on average when it ran on one worker (user +
# system CPU 19.7 min in 20.6 min of wall time).
_PROGRAM_FILES = ('program_test.py', 'multihost_test.py')


@pytest.hookimpl(tryfirst=True)  # Before xdist reads the groups.
def pytest_collection_modifyitems(items):
  for item in items:
    name = os.path.basename(str(item.fspath))
    group = 'programs' if name in _PROGRAM_FILES else name
    item.add_marker(pytest.mark.xdist_group(group))
  # The programs (about half the suite's time) go first, so one worker runs
  # them while the other runs everything else.
  items.sort(key=lambda item: os.path.basename(str(item.fspath))
             not in _PROGRAM_FILES)


@pytest.fixture
def traced_functions():
  """The names of the `tf.function`s traced while the test runs.

  Every trace goes through TF's frequent-tracing detector, which warns at
  most twice per process, so its warnings cannot be counted in a test
  process; its calls can.
  """
  from unittest import mock  # pylint: disable=g-import-not-at-top
  from tensorflow.python.eager import def_function  # pylint: disable=g-import-not-at-top
  detector = def_function._FrequentTracingDetector  # pylint: disable=protected-access
  original = detector.called_with_tracing
  traced = []

  def record(self, function_name, omit_warning):
    traced.append(str(function_name))
    return original(self, function_name, omit_warning)

  with mock.patch.object(detector, 'called_with_tracing', record):
    yield traced
