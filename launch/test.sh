#!/usr/bin/env bash
# Sets up (if needed) and runs the test suite on two pytest-xdist workers
# (tests/conftest.py says how tests are split). Extra arguments go to pytest,
# e.g. `-n 0` to run on one worker.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/launch/setup.sh"
cd "$ROOT"
export MUJOCO_GL="${MUJOCO_GL:-egl}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 \
  -n 2 --dist loadgroup "$@" tests
