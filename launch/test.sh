#!/usr/bin/env bash
# Sets up (if needed) and runs the test suite on two pytest-xdist workers
# (tests/conftest.py says how tests are split). Extra arguments go to pytest,
# e.g. `-n 0` to run on one worker.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Under CI the GPU libraries (setup.sh --gpu, 1.6 GB) are installed too, so that
# tests/cuda_libraries_test.py runs there; elsewhere it skips without them.
if [[ "${CI:-}" == "true" ]]; then
  bash "$ROOT/launch/setup.sh" --gpu
else
  bash "$ROOT/launch/setup.sh"
fi
cd "$ROOT"
export MUJOCO_GL="${MUJOCO_GL:-egl}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 \
  -n 2 --dist loadgroup "$@" tests
