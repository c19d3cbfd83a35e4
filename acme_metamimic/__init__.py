"""MetaMimic for Acme."""

# Acme imports gym (for its gym wrappers), and gym 0.x prints a three-line
# notice about being unmaintained to stderr on import, once in every process:
# once per node on a run's console. Nothing here uses gym; emptying the notice
# table of `gym_notices` (where gym reads it) before gym is imported keeps the
# notice out.
try:
  from gym_notices import notices as _gym_notices  # pylint: disable=g-import-not-at-top
  _gym_notices.notices.clear()
except ImportError:
  pass

# CUDA and cuDNN from pip wheels (`launch/setup.sh --gpu`), where installed and
# the process may use a GPU, before TensorFlow looks for them.
from acme_metamimic import cuda_libraries as _cuda_libraries  # pylint: disable=g-import-not-at-top,g-bad-import-order

if _cuda_libraries.wanted():
  _cuda_libraries.preload()
