#!/usr/bin/env bash
# Sets up (if needed) and runs the main job: distributed MetaMimic on local_mp,
# features preset, with the demo curriculum for 360 s of training (the setting
# in which imitation measurably learns on 2 CPU cores; docs/results.md), then
# evaluates the final policies on every held-out demo and every demo trained on
# (--evaluate, about a minute) and prints the held-out imitation's share of
# the demos' task reward and the task policy's reach, lift and stack rates.
# Extra arguments go to launch/run_local.py and override these.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/launch/setup.sh"
cd "$ROOT"
export MUJOCO_GL="${MUJOCO_GL:-egl}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python launch/run_local.py --demo_curriculum --max_seconds=360 \
  --evaluate "$@"
