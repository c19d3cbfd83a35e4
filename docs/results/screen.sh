#!/bin/bash
# One run of a fidelity screen (docs/fidelity.md), then its evaluation.
#
#   bash docs/results/screen.sh SCREEN ARM SEED [run_local flags...]
#
# Trains the main job's set-up (features preset, demo curriculum, 360 s, the
# 20 training and 10 held-out demos committed under data/, seeds 0 and
# 10,000; with a --demo_seed=N flag, N != 0, the sets recorded with that
# seed under data/demos_*_features_seedN) with --seed=SEED and the extra
# flags (the arm's one change), in the workdir
# /tmp/screens/SCREEN/armARM_seedSEED; evaluates it with launch/evaluate.py
# (greedy, every demo once from its first frame); and copies what the tables
# and curves read (summary.json, run.json, evaluation.json, logs/*/logs.csv)
# to docs/results/SCREEN/armARM_seedSEED. Run it alone on the machine: the
# learners' step counts are part of the result.
set -euo pipefail
screen=$1 arm=$2 seed=$3
shift 3
cd "$(dirname "$0")/../.."
export MUJOCO_GL=${MUJOCO_GL:-egl} TF_CPP_MIN_LOG_LEVEL=2
name=arm${arm}_seed${seed}
workdir=/tmp/screens/$screen/$name
out=docs/results/$screen/$name
suffix=
for flag in "$@"; do
  case $flag in --demo_seed=0) ;; --demo_seed=*) suffix=_seed${flag#*=} ;; esac
done
train_demos=data/demos_train_features$suffix
validation_demos=data/demos_validation_features$suffix
mkdir -p "$(dirname "$workdir")"
.venv/bin/python launch/run_local.py --demo_curriculum --max_seconds=360 \
  --seed="$seed" --demos="$train_demos" \
  --validation_demos="$validation_demos" \
  --workdir="$workdir" "$@"
# The first 10 demos of each split, as every screen recorded so far was
# evaluated (run_local --evaluate takes every demo trained on).
.venv/bin/python launch/evaluate.py --workdir="$workdir" --num_episodes=10 \
  --demos="$train_demos" --validation_demos="$validation_demos" \
  --output="$workdir/evaluation.json"
mkdir -p "$out"
cp "$workdir"/{summary.json,run.json,evaluation.json} "$out"/
(cd "$workdir" && find logs -name logs.csv) | while read -r log; do
  mkdir -p "$out/$(dirname "$log")"
  cp "$workdir/$log" "$out/$log"
done
echo "[screen] $screen $name -> $out"
