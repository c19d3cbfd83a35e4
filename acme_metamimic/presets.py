"""Named set-ups of the Jaco stacking task: environment, networks, demo loading.

`features` (CPU default): body proprioception + brick poses, MLP torso.
`vision` (paper): 128x128 RGB from the front camera, paper ResNet torso; the
policy sees only the image (eq. 2 still uses `body`).

The factories are module-level functions so that `functools.partial` of them
pickles into Launchpad nodes.
"""

import dataclasses
from typing import Mapping, Optional, Sequence

from acme import specs
from acme.agents.tf.d4pg import agent as d4pg_agent

from acme_metamimic import config as config_lib
from acme_metamimic import environments
from acme_metamimic import networks
from acme_metamimic.demonstrations import dataset


@dataclasses.dataclass(frozen=True)
class Preset:
  """What differs between the CPU and the paper set-up."""

  torso: str
  observation_keys: Sequence[str]
  mlp_torso_sizes: Sequence[int] = (256, 256)
  policy_layer_sizes: Sequence[int] = (256, 256, 256)
  critic_layer_sizes: Sequence[int] = (512, 512, 256)


PRESETS = {
    'features': Preset(torso='mlp', observation_keys=('body', 'features'),
                       mlp_torso_sizes=(256,), policy_layer_sizes=(256, 256),
                       critic_layer_sizes=(256, 256)),
    'vision': Preset(torso='paper_resnet', observation_keys=('image',)),
}


def get(preset: str) -> Preset:
  if preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r}; choose from '
                     f'{sorted(PRESETS)}.')
  return PRESETS[preset]


def make_environment(preset: str, seed: int) -> environments.JacoStack:
  """The plain task environment of a preset."""
  get(preset)
  return environments.make_environment(preset, seed=seed)


def make_networks(preset: str, config: config_lib.MetaMimicConfig,
                  environment_spec: specs.EnvironmentSpec,
                  goal_conditioned: bool) -> d4pg_agent.D4PGNetworks:
  """Imitation (goal-conditioned) or task networks of a preset."""
  setup = get(preset)
  return networks.make_networks(
      environment_spec, torso=setup.torso,
      observation_keys=setup.observation_keys,
      goal_conditioned=goal_conditioned, vmin=config.vmin, vmax=config.vmax,
      num_atoms=config.num_atoms, policy_layer_sizes=setup.policy_layer_sizes,
      critic_layer_sizes=setup.critic_layer_sizes,
      mlp_torso_sizes=setup.mlp_torso_sizes)


def load_demonstrations(preset: str, path: str,
                        max_episodes: Optional[int] = None
                        ) -> Sequence[dataset.Demonstration]:
  """Loads and validates a demo set against the preset's environment."""
  environment = make_environment(preset, seed=0)
  return dataset.load_demonstrations(
      path, specs.make_environment_spec(environment), preset,
      state_size=environment.get_state().shape[0],
      max_episodes=max_episodes).episodes


def load_demonstration_split(preset: str, paths: Mapping[str, str],
                             split: str) -> Sequence[dataset.Demonstration]:
  """`DistributedMetaMimic`'s demonstrations factory: split -> demos."""
  return load_demonstrations(preset, paths[split])
