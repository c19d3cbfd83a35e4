"""Jaco stack-2-bricks environments for MetaMimic."""

from acme_metamimic.environments.jaco_stack import curriculum_start_state
from acme_metamimic.environments.jaco_stack import EnvironmentConfig
from acme_metamimic.environments.jaco_stack import JacoStack
from acme_metamimic.environments.jaco_stack import make_environment
