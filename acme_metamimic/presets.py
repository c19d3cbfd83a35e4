"""Named set-ups of the Jaco stacking task: environment, networks, demo loading.

`features` (CPU default): body proprioception + brick poses, MLP torso.
`vision` (paper): 128x128 RGB from the front camera, paper ResNet torso; the
policy sees only the image (eq. 2 still uses `body`).

Each preset names its hyperparameters (`Preset.config`): the features
presets `config.features_config()`, the vision presets the paper's
`config.paper_config()`. Launchers build every config with `make_config`.

The network ablation (paper fig. 6) adds presets that differ only in their
networks: `features_mlp64` / `features_mlp1024` (MLP widths around the
default 256) and `vision_impala` / `vision_no_instance_norm`. A preset's
`environment` names the `JacoStack` preset, which its demo sets record.

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
from acme_metamimic.environments import jaco_stack
from acme_metamimic.environments import observation_scales


@dataclasses.dataclass(frozen=True)
class Preset:
  """What differs between set-ups: environment, networks, hyperparameters."""

  environment: str
  torso: str
  observation_keys: Sequence[str]
  # A `config_lib.CONFIGS` name: the preset's MetaMimicConfig.
  config: str
  mlp_torso_sizes: Sequence[int] = (256, 256)
  policy_layer_sizes: Sequence[int] = (256, 256, 256)
  critic_layer_sizes: Sequence[int] = (512, 512, 256)


def _features(width: int) -> Preset:
  return Preset(environment='features', torso='mlp',
                observation_keys=('body', 'features'), config='features',
                mlp_torso_sizes=(width,), policy_layer_sizes=(width, width),
                critic_layer_sizes=(width, width))


def _vision(torso: str) -> Preset:
  return Preset(environment='vision', torso=torso, observation_keys=('image',),
                config='paper')


PRESETS = {
    'features': _features(256),
    'features_mlp64': _features(64),
    'features_mlp1024': _features(1024),
    'vision': _vision('paper_resnet'),
    'vision_no_instance_norm': _vision('paper_resnet_no_instance_norm'),
    'vision_impala': _vision('impala'),
}


def get(preset: str) -> Preset:
  if preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r}; choose from '
                     f'{sorted(PRESETS)}.')
  return PRESETS[preset]


def make_config(preset: str, **overrides) -> config_lib.MetaMimicConfig:
  """The preset's hyperparameters, with `overrides` (config fields) applied."""
  return config_lib.CONFIGS[get(preset).config](**overrides)


def make_environment(preset: str, seed: int) -> environments.JacoStack:
  """The plain task environment of a preset."""
  return environments.make_environment(get(preset).environment, seed=seed)


def make_networks(preset: str, config: config_lib.MetaMimicConfig,
                  environment_spec: specs.EnvironmentSpec,
                  goal_conditioned: bool) -> d4pg_agent.D4PGNetworks:
  """Imitation (goal-conditioned) or task networks of a preset."""
  setup = get(preset)
  key_sizes = None
  if not goal_conditioned and not config.task_joint_velocities:
    if 'body' not in setup.observation_keys:
      raise ValueError(
          f'task_joint_velocities=False: the {preset!r} preset\'s networks '
          f'see {list(setup.observation_keys)}, no joint velocities to drop.')
    key_sizes = {'body': jaco_stack.BODY_POSITIONS}
  return networks.make_networks(
      environment_spec, torso=setup.torso,
      observation_keys=setup.observation_keys,
      goal_conditioned=goal_conditioned, vmin=config.vmin,
      vmax=config.critic_vmax(goal_conditioned),
      num_atoms=config.num_atoms, policy_layer_sizes=setup.policy_layer_sizes,
      critic_layer_sizes=setup.critic_layer_sizes,
      mlp_torso_sizes=setup.mlp_torso_sizes,
      goal_delta_scale=config.goal_delta_scale if goal_conditioned else None,
      goal_delta_skip=config.goal_delta_skip and goal_conditioned,
      normalization=(observation_scales.NORMALIZATION
                     if config.observation_normalization else None),
      observation_key_sizes=key_sizes)


def load_demonstrations(preset: str, path: str,
                        max_episodes: Optional[int] = None
                        ) -> Sequence[dataset.Demonstration]:
  """Loads and validates a demo set against the preset's environment."""
  environment = make_environment(preset, seed=0)
  return dataset.load_demonstrations(
      path, specs.make_environment_spec(environment), get(preset).environment,
      state_size=environment.get_state().shape[0],
      max_episodes=max_episodes).episodes


def load_demonstration_split(
    preset: str, paths: Mapping[str, str], split: str,
    max_episodes: Optional[Mapping[str, int]] = None
) -> Sequence[dataset.Demonstration]:
  """`DistributedMetaMimic`'s demonstrations factory: split -> demos.

  `max_episodes` (split -> count) keeps the first demos of a split, e.g. to
  train on nested subsets of one large set (the demo-count ablation).
  """
  return load_demonstrations(preset, paths[split],
                             max_episodes=(max_episodes or {}).get(split))
