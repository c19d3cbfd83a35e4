"""TensorFlow finds the CUDA and cuDNN libraries of `launch/setup.sh --gpu`.

Run on machines without a GPU: TensorFlow 2.8 opens libcudart at import and
the other libraries only once it has a GPU, so the test opens each by its
soname, as TensorFlow's loader does, and checks which file answered.
"""

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from acme_metamimic import cuda_libraries

INSTALLED = cuda_libraries.wheel_directory() is not None
if not INSTALLED and os.environ.get('CI') == 'true':
  # A green CI must mean this ran: launch/test.sh installs them under CI.
  raise RuntimeError('CI=true but the CUDA wheels are missing: run '
                     '`bash launch/setup.sh --gpu`.')
pytestmark = pytest.mark.skipif(
    not INSTALLED, reason='no CUDA wheels: `bash launch/setup.sh --gpu`')

# In a fresh process: import acme_metamimic and TensorFlow as a learner does,
# then open every library TensorFlow asks for by its soname; report the file
# the dynamic linker gave for each, and cuDNN's version.
_PROBE = r'''
import ctypes, json
import acme_metamimic
import tensorflow
sonames = acme_metamimic.cuda_libraries.TENSORFLOW_SONAMES
for soname in sonames:
  ctypes.CDLL(soname)
maps = open('/proc/self/maps').read().splitlines()
found = {soname: sorted({line.split()[-1] for line in maps
                         if line.endswith('/' + soname)})
         for soname in sonames}
cudnn = ctypes.CDLL('libcudnn.so.8')
cudnn.cudnnGetVersion.restype = ctypes.c_size_t
print(json.dumps(dict(found=found, cudnn=cudnn.cudnnGetVersion())))
'''


def test_every_library_tensorflow_opens_comes_from_the_wheels():
  result = subprocess.run(
      [sys.executable, '-c', _PROBE], capture_output=True, text=True,
      timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='0'))
  assert result.returncode == 0, result.stderr[-3000:]
  probe = json.loads(result.stdout.strip().splitlines()[-1])
  directory = os.path.realpath(cuda_libraries.wheel_directory())
  for soname in cuda_libraries.TENSORFLOW_SONAMES:
    paths = probe['found'][soname]
    assert len(paths) == 1 and os.path.realpath(paths[0]).startswith(
        directory + os.sep), (soname, paths)
  # TensorFlow's own loader opened libcudart at import (it logs a warning
  # when it cannot).
  assert "Could not load dynamic library 'libcudart" not in result.stderr
  # Versions TensorFlow 2.8 accepts: it was built against CUDA 11.2 and
  # cuDNN 8.1; CUDA 11 minor releases, and cuDNN 8 releases from 8.1 on, work
  # with it.
  build = tf.sysconfig.get_build_info()
  assert build['cuda_version'].startswith('11.')
  assert build['cudnn_version'] == '8'
  assert importlib.metadata.version('nvidia-cuda-runtime-cu11').startswith(
      '11.')
  assert 8100 <= probe['cudnn'] < 9000


def test_nodes_without_a_gpu_do_not_load_them():
  # Every node but the learners runs with CUDA_VISIBLE_DEVICES=''
  # (agent_distributed.node_environment): it neither needs nor maps them, and
  # TensorFlow warns that libcudart is missing, as without the wheels.
  result = subprocess.run(
      [sys.executable, '-c', 'import acme_metamimic, tensorflow; '
       'print(sum("/nvidia/" in line for line in '
       'open("/proc/self/maps")))'],
      capture_output=True, text=True, timeout=300,
      env=dict(os.environ, CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='0'))
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().splitlines()[-1] == '0'
  assert "Could not load dynamic library 'libcudart" in result.stderr
