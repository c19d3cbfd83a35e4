#!/usr/bin/env bash
# Sets up everything acme_metamimic needs on a fresh Debian machine (as root):
# headless-rendering apt packages, a Python 3.10 virtualenv in ./.venv, and the
# exact pins of requirements/constraints-py310.txt installed with uv.
# Idempotent: a second run only checks a stamp and returns.
#
#   bash launch/setup.sh --gpu
#
# also installs the CUDA 11 and cuDNN 8 libraries TensorFlow 2.8.4 loads, from
# NVIDIA's pip wheels (requirements/gpu-cu11.txt, about 1.6 GB), for learners
# on a GPU host; acme_metamimic/cuda_libraries.py makes TensorFlow find them.
# The GPU driver itself (libcuda.so.1) must come with the host.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
CONSTRAINTS="$ROOT/requirements/constraints-py310.txt"
STAMP="$VENV/.acme_metamimic_setup"
WANT="$(cat "$CONSTRAINTS" "$ROOT/setup.py" "$0" | sha256sum | cut -d' ' -f1)"
GPU_REQUIREMENTS="$ROOT/requirements/gpu-cu11.txt"
GPU_STAMP="$VENV/.acme_metamimic_gpu"
GPU_WANT="$(sha256sum < "$GPU_REQUIREMENTS" | cut -d' ' -f1)"
GPU=0
case "${1:-}" in
  "") ;;
  --gpu) GPU=1 ;;
  *) echo "usage: $0 [--gpu]" >&2; exit 2 ;;
esac

base_ready() { [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; }
gpu_ready() { [[ -f "$GPU_STAMP" && "$(cat "$GPU_STAMP")" == "$GPU_WANT" ]]; }
if base_ready && { (( ! GPU )) || gpu_ready; }; then
  exit 0
fi

log() { echo "[setup] $*" >&2; }

setup_base() {

# 1. System packages: headless MuJoCo rendering (EGL/OSMesa), ffmpeg for
#    videos, iproute2 for the multi-host test's network namespaces.
need_apt=()
for pkg in libegl1 libgl1 libosmesa6 libglfw3 ffmpeg iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if (( ${#need_apt[@]} )); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing apt packages ${need_apt[*]}; run this script as root or install them"; exit 1
  fi
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# 2. A Python 3.10 interpreter (Launchpad has no wheels for 3.11+).
find_py310() {
  local c
  for c in "${PYTHON310:-}" "$(command -v python3.10 2>/dev/null || true)" \
           "$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10 \
           /usr/bin/python3.10 /usr/local/bin/python3.10; do
    [[ -n "$c" && -x "$c" ]] || continue
    if "$c" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}
if ! PY310="$(find_py310)"; then
  log "no Python 3.10 found. Install one, e.g. 'uv python install 3.10' or"
  log "'pyenv install 3.10.13', or set PYTHON310=/path/to/python3.10."
  exit 1
fi
log "using $PY310"

# 3. uv, the virtualenv, and the pinned packages.
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY310" -m venv "$VENV"
fi
if [[ ! -x "$VENV/bin/uv" ]]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check uv==0.5.11
fi
export VIRTUAL_ENV="$VENV"
log "installing pinned dependencies with uv"
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -c "$CONSTRAINTS" \
  -e "$ROOT[test]"
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --no-deps dm-acme==0.4.0
# Bytecode for every installed module, written once here: where
# PYTHONDONTWRITEBYTECODE is set (as on these machines) Python never caches
# it, and each of the program's ~8 node processes recompiled TensorFlow's
# sources at start-up (importing the agent: 14.6 s of CPU without the cache,
# 5.4 s with it, on 2 cores). About 40 s. A few packages ship files that do
# not compile (Python 2 examples); they are skipped.
log "compiling bytecode"
"$VENV/bin/python" -m compileall -q -j 0 "$VENV/lib/python3.10/site-packages" \
  "$ROOT/acme_metamimic" >/dev/null || true
"$VENV/bin/python" - <<'PY'
import acme, launchpad, reverb, sonnet, tensorflow, trfl, mujoco, dm_control
print("[setup] ok: acme", acme.__version__, "tf", tensorflow.__version__,
      "mujoco", mujoco.__version__)
PY
echo "$WANT" > "$STAMP"
}

setup_gpu() {
  log "installing the CUDA 11 / cuDNN 8 wheels of $GPU_REQUIREMENTS"
  "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -r "$GPU_REQUIREMENTS"
  "$VENV/bin/python" - <<'PY'
from acme_metamimic import cuda_libraries
paths = cuda_libraries.preload()
print(f"[setup] ok: {len(paths)} CUDA/cuDNN libraries load from "
      f"{cuda_libraries.wheel_directory()}")
PY
  echo "$GPU_WANT" > "$GPU_STAMP"
}

base_ready || setup_base
if (( GPU )) && ! gpu_ready; then
  setup_gpu
fi
