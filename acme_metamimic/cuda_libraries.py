"""CUDA 11 and cuDNN 8 from NVIDIA's pip wheels, made visible to TensorFlow.

`launch/setup.sh --gpu` installs the wheels of requirements/gpu-cu11.txt into
the virtualenv. Their libraries land in `site-packages/nvidia/<name>/lib/`,
where TensorFlow 2.8's loader does not look: it calls `dlopen` with each
library's soname ('libcublas.so.11', ...), which searches LD_LIBRARY_PATH and
the system's paths only, and LD_LIBRARY_PATH cannot be changed for a process
already running. `preload` therefore opens each library by its full path,
dependencies first; the dynamic linker then answers TensorFlow's later
`dlopen` of the same soname with the library already loaded. cuDNN 8.9 opens
its own sub-libraries (libcudnn_ops_infer.so.8, ...) by soname too, so they
are preloaded as well.

Importing acme_metamimic calls `preload` where the wheels are installed and
the process may see a GPU (not with CUDA_VISIBLE_DEVICES='', as every node but
the learners runs: see `agent_distributed.node_environment`). Without the
wheels it does nothing, and TensorFlow runs on the CPU as before.

What is verified, on machines without a GPU (tests/cuda_libraries_test.py):
each library TensorFlow asks for opens by its soname after `preload`, from the
wheel, with versions TensorFlow 2.8 accepts (CUDA runtime 11.x, cuDNN 8.x at
least the 8.1 it was built with). Not verified here: TensorFlow placing a
learner on a real GPU with these libraries (no GPU machine that can run this
stack was available; docs/multihost.md).
"""

import ctypes
import glob
import importlib.util
import os
from typing import Dict, List, Optional

# What TensorFlow 2.8's loader (stream_executor/platform/default/
# dso_loader.cc) opens for a GPU, by soname. libcuda.so.1 is the driver's and
# comes with it; CUPTI (the profiler's) and TensorRT are optional.
TENSORFLOW_SONAMES = ('libcudart.so.11.0', 'libcublasLt.so.11',
                      'libcublas.so.11', 'libcufft.so.10', 'libcurand.so.10',
                      'libcusparse.so.11', 'libcusolver.so.11',
                      'libcudnn.so.8')
# Load order: a library after those it links against.
_ORDER = ('cuda_runtime', 'cuda_nvrtc', 'cublas', 'cufft', 'curand',
          'cusparse', 'cusolver', 'cudnn')

_loaded: Dict[str, ctypes.CDLL] = {}


def wheel_directory() -> Optional[str]:
  """site-packages/nvidia of the installed wheels, or None."""
  try:
    spec = importlib.util.find_spec('nvidia')
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  return list(spec.submodule_search_locations)[0]


def library_paths(directory: str) -> List[str]:
  """Every library of the wheels under `directory`, in load order."""
  paths = []
  for name in _ORDER:
    libraries = sorted(glob.glob(os.path.join(directory, name, 'lib',
                                              'lib*.so*')))
    # libcudnn.so.8 itself last: it opens the others.
    libraries.sort(key=lambda path: os.path.basename(path) == 'libcudnn.so.8')
    paths += libraries
  return paths


def preload(directory: Optional[str] = None) -> List[str]:
  """Opens the wheels' libraries (once); returns the paths opened.

  Args:
    directory: the wheels' `nvidia` directory; found on sys.path if None.

  Raises:
    OSError: naming the library that failed to load.
  """
  directory = directory or wheel_directory()
  if directory is None:
    return []
  opened = []
  for path in library_paths(directory):
    if path not in _loaded:
      try:
        _loaded[path] = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
      except OSError as e:
        raise OSError(f'{path}: cannot load it ({e}); reinstall with '
                      '`launch/setup.sh --gpu`, or remove the nvidia-* '
                      'packages to run on the CPU.') from e
    opened.append(path)
  return opened


def wanted() -> bool:
  """Whether this process should preload: it may see a GPU."""
  return os.environ.get('CUDA_VISIBLE_DEVICES') != ''
