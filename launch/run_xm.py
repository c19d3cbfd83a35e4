"""Launches distributed MetaMimic on Google Cloud (Vertex AI) via XManager.

    python launch/run_xm.py --dry_run                 # no cloud needed
    python launch/run_xm.py --workdir=/gcs/<bucket>/metamimic --accelerator=v100

Every node group gets per-host resources (multihost.default_resource_specs):
replay and both learners on accelerator hosts (--accelerator x
--accelerator_count, 8 vCPU, 64 GiB), the coordinator on a small CPU host,
counter, actors and evaluators on CPU hosts (4 vCPU, 8 GiB). One Vertex AI
replica per node; groups with equal specs share a worker pool.

--dry_run builds the program (the paper's 256 imitation + 256 task actors by
default) and prints the mapping: group -> resources and node count, the worker
pools Launchpad will ask Vertex AI for, and the node names in the runtime.

Without --dry_run it packages acme_metamimic and the demo sets into a Docker
context (Launchpad's xm_docker: python:3.10 base image, the pins of
requirements/constraints-py310.txt) and calls lp.launch(...,
launch_type='vertex_ai'). That needs `pip install xmanager` and a configured
GCP project (https://github.com/deepmind/xmanager#create-a-gcp-project); the
workdir must be storage every node sees, e.g. Vertex AI's Cloud Storage FUSE
mount /gcs/<bucket>/... . Other flags are run_local.py's.
"""

import os
import shutil
import tempfile

from absl import app
from absl import flags
import launchpad as lp

import run_local  # launch/ is on sys.path when this script runs.
from acme_metamimic import agent_distributed
from acme_metamimic import multihost

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_DRY_RUN = flags.DEFINE_bool(
    'dry_run', False, 'Build the program and print the resource mapping; '
    'launch nothing.')
_ACCELERATOR = flags.DEFINE_enum(
    'accelerator', 'v100', ['t4', 'p4', 'p100', 'v100', 'a100'],
    'GPU type of the replay/learner hosts.')
_ACCELERATOR_COUNT = flags.DEFINE_integer(
    'accelerator_count', 1, 'GPUs per replay/learner host.')
_REQUIREMENTS = flags.DEFINE_string(
    'docker_requirements',
    os.path.join(ROOT, 'requirements', 'constraints-py310.txt'),
    'pip requirements installed in the Docker image.')

# In the container the code directory is the working directory.
_CONTAINER_DEMOS = {agent_distributed.TRAIN: 'data/demos_train',
                    agent_distributed.VALIDATION: 'data/demos_validation'}

flags.FLAGS.set_default('num_imitation_actors', 256)
flags.FLAGS.set_default('num_task_actors', 256)


def _stage_code() -> str:
  """A Docker context: the package and the demo sets, nothing else."""
  staging = tempfile.mkdtemp(prefix='metamimicxm')
  shutil.copytree(os.path.join(ROOT, 'acme_metamimic'),
                  os.path.join(staging, 'acme_metamimic'),
                  ignore=shutil.ignore_patterns('__pycache__'))
  for split, flag in ((agent_distributed.TRAIN, run_local._DEMOS),  # pylint: disable=protected-access
                      (agent_distributed.VALIDATION,
                       run_local._VALIDATION_DEMOS)):  # pylint: disable=protected-access
    shutil.copytree(flag.value, os.path.join(staging, _CONTAINER_DEMOS[split]))
  return staging


def _xm_docker():
  """Launchpad's xm_docker module; exits with what to install if missing."""
  try:
    from launchpad.nodes.python import xm_docker  # pylint: disable=g-import-not-at-top
  except Exception as e:  # xm_docker raises a bare Exception without xmanager.
    raise SystemExit(
        'The Vertex AI launch needs XManager, which is not installed: run '
        '`pip install xmanager google-cloud-aiplatform` in this venv and set '
        'up a GCP project (https://github.com/deepmind/xmanager#create-a-gcp-'
        f'project). Use --dry_run to see the mapping without it. ({e})')
  return xm_docker


def _xm_resources(program: lp.Program, specs, staging: str, xm_docker):
  return {group: xm_docker.DockerConfig(
              code_directory=staging,
              docker_requirements=_REQUIREMENTS.value,
              hw_requirements=specs[group].to_xm())
          for group in program.groups}


def main(argv):
  del argv
  run_local.check_flags()
  specs = multihost.default_resource_specs(_ACCELERATOR.value,
                                           _ACCELERATOR_COUNT.value)
  workdir = run_local._WORKDIR.value  # pylint: disable=protected-access
  agent = run_local.make_program_definition(
      workdir, run_local._NUM_IMITATION_ACTORS.value,  # pylint: disable=protected-access
      run_local._NUM_TASK_ACTORS.value,  # pylint: disable=protected-access
      demo_paths=_CONTAINER_DEMOS)
  program = agent.build()
  sizes = multihost.group_sizes(program)
  print(multihost.format_plan(sizes, specs), flush=True)
  if _DRY_RUN.value:
    print('[metamimic] dry run: nothing launched.', flush=True)
    return
  xm_docker = _xm_docker()
  run_local.ensure_demos()
  staging = _stage_code()
  resources = _xm_resources(program, specs, staging, xm_docker)
  lp.launch(program, launch_type=lp.LaunchType.VERTEX_AI,
            xm_resources=resources)


if __name__ == '__main__':
  app.run(main)
