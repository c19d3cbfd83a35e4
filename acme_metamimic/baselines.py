"""The paper's baselines and ablations as configurations of the same program.

Figure 8 compares MetaMimic's task policy with D4PG (task actors only), D4PGfD
(demonstration transitions, with actions and task rewards, in the task replay)
and D4PG starting episodes from demonstration states (a demo curriculum). None
of them is a separate agent here: each is a `Baseline`, i.e.

- `config_overrides` applied to a `MetaMimicConfig` (`apply`);
- `imitation`: whether imitation actors / learner / evaluators run at all;
- `task_curriculum`: task actors start from `curriculum_start_state` of the
  training demos (`CurriculumStartEnvironment` wraps their environment);
- `demo_transitions`: the training demos, loaded with `include_actions=True`,
  are written once (`insert_demonstrations`) into a `demo` table of their
  own, and each task-learner batch draws `demo_ratio` of its items from it.
  Written into the task table, as before, they were evicted by its FIFO
  remover once the actors had added `max_replay_size` items: about 9 minutes
  into docs/fidelity.md's 60-minute D4PGfD run.

`launch/run_local.py --baseline=NAME` runs any of them: it applies the
overrides and passes the `Baseline` to `DistributedMetaMimic`, which leaves out
the imitation nodes, wraps task-actor environments and inserts the demos.

The D4PG baselines are the paper's D4PG learner: their overrides set
`task_behaviour_cloning_weight` back to 0 (the features preset's task learner
regresses toward its batch's actions, which for D4PGfD are the demonstrators'),
whatever the preset or `--config` gave.
"""

import dataclasses
from typing import List, Mapping, Optional, Sequence

from acme import adders as acme_adders
from acme import wrappers
from acme_metamimic import config as config_lib
from acme_metamimic import presets
from acme_metamimic.demonstrations import dataset
from acme_metamimic.environments import imitation
from acme_metamimic.environments import jaco_stack
import dm_env
import numpy as np


@dataclasses.dataclass(frozen=True)
class Baseline:
  name: str
  description: str
  config_overrides: Mapping[str, object] = dataclasses.field(
      default_factory=dict)
  imitation: bool = True
  task_curriculum: bool = False
  demo_transitions: bool = False

  def apply(self, config: config_lib.MetaMimicConfig
            ) -> config_lib.MetaMimicConfig:
    """`config` with this baseline's overrides (validated again)."""
    return dataclasses.replace(config, **dict(self.config_overrides))


# What every D4PG baseline changes: no imitation actors, and the paper's
# task learner (no behaviour-cloning term).
_D4PG_OVERRIDES = dict(num_imitation_actors=0, task_behaviour_cloning_weight=0.)

BASELINES = {
    b.name: b for b in (
        Baseline('metamimic', 'MetaMimic: imitation + task actors, shared '
                 'task replay (the default program).'),
        Baseline('metamimic_curriculum', 'MetaMimic with the demo curriculum '
                 '(imitation episodes start at a random frame among the '
                 "demo's first curriculum_max_step).",
                 config_overrides=dict(demo_curriculum=True)),
        Baseline('metamimic_task_curriculum', 'MetaMimic with the demo '
                 'curriculum for imitation and task actors: the task actors '
                 'also start from demonstration states '
                 '(curriculum_start_state), as d4pg_curriculum\'s do.',
                 config_overrides=dict(demo_curriculum=True),
                 task_curriculum=True),
        Baseline('d4pg', 'D4PG: task actors and task learner only, no demos.',
                 config_overrides=_D4PG_OVERRIDES,
                 imitation=False),
        Baseline('d4pgfd', 'D4PGfD: D4PG whose task learner also samples '
                 'the training demos as N-step transitions (demo actions and '
                 'task rewards), kept in a demo table for the whole run.',
                 config_overrides=_D4PG_OVERRIDES,
                 imitation=False, demo_transitions=True),
        Baseline('d4pg_curriculum', 'D4PG whose task actors start from '
                 'demonstration states (curriculum_start_state).',
                 config_overrides=_D4PG_OVERRIDES,
                 imitation=False, task_curriculum=True),
    )
}


def get(name: str) -> Baseline:
  if name not in BASELINES:
    raise ValueError(f'Unknown baseline {name!r}; choose from '
                     f'{sorted(BASELINES)}.')
  return BASELINES[name]


def check_comparison(baseline_names: Sequence[str],
                     preset_names: Sequence[str], demo_counts: Sequence[str],
                     num_episodes: int) -> List[int]:
  """Checks a comparison's settings (`launch/compare_baselines.py`' flags).

  Raises ValueError, naming the flag, before anything is trained: unknown
  baselines or presets, presets of different environments (they would need
  different demo sets), demo counts that are not integers or are below
  `num_episodes` (the evaluation must follow only demos trained on). Returns
  the demo counts as integers.
  """
  for name in baseline_names:
    try:
      get(name)
    except ValueError as e:
      raise ValueError(f'--baselines: {e}') from e
  try:
    environments = {presets.get(preset).environment for preset in preset_names}
  except ValueError as e:
    raise ValueError(f'--presets: {e}') from e
  if len(environments) != 1:
    raise ValueError(f'--presets={",".join(preset_names)} use the '
                     f'environments {sorted(environments)}; give presets '
                     'of one environment, which share one demo set.')
  try:
    counts = [int(count) for count in demo_counts]
  except ValueError as e:
    raise ValueError(f'--demo_counts: {e}') from e
  if any(count < num_episodes for count in counts):
    raise ValueError(
        f'--demo_counts={",".join(demo_counts)}: every count must be at '
        f'least --num_episodes={num_episodes}, so that the evaluation '
        'only follows demos the agent trained on.')
  return counts


class CurriculumStartEnvironment(wrappers.EnvironmentWrapper):
  """A task environment whose episodes start at demonstration states.

  Each `reset` draws `curriculum_start_state(demo_states, rng, max_step)`: a
  random demo, then a random one of its first `max_step` physics states.
  Everything else (reward, episode length) is the wrapped environment's.
  """

  def __init__(self, environment: dm_env.Environment,
               demonstrations: Sequence[dataset.Demonstration],
               max_step: int = 300, seed: Optional[int] = None):
    if not demonstrations:
      raise ValueError('CurriculumStartEnvironment needs demonstrations.')
    super().__init__(environment)
    self._states = [d.physics_states for d in demonstrations]
    self._max_step = max_step
    self._rng = np.random.default_rng(seed)

  def reset(self) -> dm_env.TimeStep:
    state = jaco_stack.curriculum_start_state(self._states, self._rng,
                                              self._max_step)
    return imitation.reset_to_state(self._environment, state)


def load_demonstrations_with_actions(preset: str, path: str,
                                     max_episodes: Optional[int] = None
                                     ) -> Sequence[dataset.Demonstration]:
  """`presets.load_demonstrations` with the demonstrator actions (D4PGfD)."""
  from acme import specs  # pylint: disable=g-import-not-at-top
  environment = presets.make_environment(preset, seed=0)
  return dataset.load_demonstrations(
      path, specs.make_environment_spec(environment),
      presets.get(preset).environment,
      state_size=environment.get_state().shape[0], max_episodes=max_episodes,
      include_actions=True).episodes


def num_demo_items(demonstrations: Sequence[dataset.Demonstration],
                   n_step: int) -> int:
  """Items `insert_demonstrations` makes: T + n_step - 1 per demo of T steps.

  Acme's N-step adder also writes the n_step - 1 shorter transitions that
  start an episode.
  """
  return sum(demo.rewards.shape[0] + n_step - 1 for demo in demonstrations)


def insert_demonstrations(demonstrations: Sequence[dataset.Demonstration],
                          adder: acme_adders.Adder) -> int:
  """Writes demos (with actions) as N-step transitions through `adder`.

  `adder` is Acme's `NStepTransitionAdder` on the demo table
  (`MetaMimicBuilder.make_demo_adder(client)`; the task actors' `make_adder`
  writes the task table), so demo transitions have exactly the task table's
  signature and N-step returns of the task reward.
  Every demo step is a transition with discount 1; the last one is a
  truncation (LAST, discount 1), as the recorded demos end by the
  demonstrator finishing, not by a terminal state.

  Returns:
    The number of demo steps (actions) written.

  Raises:
    ValueError: if a demo was loaded without actions (load it with
      `include_actions=True`).
  """
  written = 0
  for demo in demonstrations:
    if demo.actions is None:
      raise ValueError(
          f'Demonstration {demo.episode_id} has no actions: load the set with '
          'include_actions=True.')
    num_steps = demo.actions.shape[0]
    adder.add_first(dm_env.restart(demo.frame(0)))
    for t in range(num_steps):
      reward = np.asarray(demo.rewards[t], np.float32)
      discount = np.asarray(1., np.float32)
      observation = demo.frame(t + 1)
      if t == num_steps - 1:
        timestep = dm_env.truncation(reward, observation, discount)
      else:
        timestep = dm_env.transition(reward, observation, discount)
      adder.add(np.asarray(demo.actions[t], np.float32), timestep)
      written += 1
    adder.reset()
  return written
