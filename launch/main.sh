#!/usr/bin/env bash
# Sets up (if needed) and runs the main job: distributed MetaMimic on local_mp,
# features preset, embedded defaults. Extra arguments go to launch/run_local.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/launch/setup.sh"
cd "$ROOT"
export MUJOCO_GL="${MUJOCO_GL:-egl}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python launch/run_local.py "$@"
