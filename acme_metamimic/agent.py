"""Single-process MetaMimic, the counterpart of Acme's `D4PG` agent class.

One Reverb server holds both tables. The agent *is* the imitation actor plus
both learners: run it under `acme.EnvironmentLoop` on a
`builder.make_imitation_environment(...)` environment, and optionally run
`agent.task_actor` under a second loop on the plain environment. Each `update`
steps the imitation learner (with priority updates) and the task learner.
"""

import copy
import dataclasses
from typing import Dict, List, Optional

import acme
from acme import specs
from acme.agents import agent as acme_agent
from acme.agents.tf.d4pg import agent as d4pg_agent
from acme.utils import counting
from acme.utils import loggers
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import networks as networks_lib
from acme_metamimic.environments import imitation
import numpy as np
import reverb


class JointLearner(acme.Learner):
  """Steps the imitation learner and the task learner together."""

  def __init__(self, imitation_learner: acme.Learner,
               task_learner: acme.Learner):
    self.imitation_learner = imitation_learner
    self.task_learner = task_learner

  def step(self):
    self.imitation_learner.step()
    self.task_learner.step()

  def get_variables(self, names: List[str]) -> List[List[np.ndarray]]:
    """`imitation_<name>` and `task_<name>` address the two learners."""
    values = []
    for name in names:
      kind, _, variable = name.partition('_')
      learner = {'imitation': self.imitation_learner,
                 'task': self.task_learner}[kind]
      values.extend(learner.get_variables([variable]))
    return values


class MetaMimic(acme_agent.Agent):
  """MetaMimic in one process: imitation actor, both learners, one server."""

  def __init__(self,
               environment_spec: specs.EnvironmentSpec,
               imitation_networks: d4pg_agent.D4PGNetworks,
               task_networks: d4pg_agent.D4PGNetworks,
               config: config_lib.MetaMimicConfig,
               counter: Optional[counting.Counter] = None,
               logger_factory=loggers.make_default_logger,
               checkpoint: bool = False):
    """Builds the agent.

    Args:
      environment_spec: spec of the plain (task) environment.
      imitation_networks: goal-conditioned networks (see
        `networks.make_networks(goal_conditioned=True)`).
      task_networks: unconditional networks.
      config: the hyperparameters. As in Acme's single-process D4PG, the replay
        limits are enforced by this class, not by Reverb rate limiters: the
        learners start after max(batch_size, min_replay_size) observations
        and then replay `samples_per_insert` samples per inserted item, or 32
        (Acme's D4PG default) where it is None, since this class has no
        other way to pace the learners against the actor.
      counter: parent counter.
      logger_factory: makes the learners' loggers from a label.
      checkpoint: whether Acme checkpoints the learners.
    """
    builder = builder_lib.MetaMimicBuilder(dataclasses.replace(
        config, min_replay_size=1, samples_per_insert=None))
    imitation_spec = imitation.imitation_environment_spec(environment_spec)

    target_imitation_networks = copy.deepcopy(imitation_networks)
    target_task_networks = copy.deepcopy(task_networks)
    for networks, spec in ((imitation_networks, imitation_spec),
                           (target_imitation_networks, imitation_spec),
                           (task_networks, environment_spec),
                           (target_task_networks, environment_spec)):
      networks.init(spec)

    self._replay_server = reverb.Server(
        builder.make_replay_tables(environment_spec), port=None)
    self.replay_client = reverb.Client(f'localhost:{self._replay_server.port}')

    counter = counter or counting.Counter()
    imitation_learner = builder.make_learner(
        (imitation_networks, target_imitation_networks),
        builder.make_imitation_dataset_iterator(self.replay_client),
        counter=counting.Counter(counter, 'imitation_learner'),
        logger=logger_factory('imitation_learner'),
        checkpoint=checkpoint,
        priority_table=config_lib.IMITATION_TABLE,
        replay_client=self.replay_client,
        discount=config.imitation_learner_discount(),
        inverse_dynamics_weight=config.inverse_dynamics_weight)
    task_learner = builder.make_learner(
        (task_networks, target_task_networks),
        builder.make_dataset_iterator(self.replay_client),
        counter=counting.Counter(counter, 'task_learner'),
        logger=logger_factory('task_learner'),
        checkpoint=checkpoint,
        behaviour_cloning_weight=config.task_behaviour_cloning_weight)

    imitation_actor = builder.make_actor(
        networks_lib.make_behavior_policy(imitation_networks, imitation_spec,
                                          config.exploration_sigma()),
        adder=builder.make_imitation_adder(self.replay_client), cloned=True)
    self.task_actor = builder.make_actor(
        networks_lib.make_behavior_policy(task_networks, environment_spec,
                                          config.task_exploration_sigma()),
        adder=builder.make_adder(self.replay_client))
    self.builder = builder
    self.learner = JointLearner(imitation_learner, task_learner)

    # Acme's `Agent` calls `learner.step()` once per `observations_per_step`
    # observations, and each call runs `learner_steps_per_call` SGD steps of
    # each learner, i.e. samples batch_size * learner_steps_per_call items of
    # each table. Each observation inserts one item into each table (as in
    # Acme's D4PG, an N-step adder's n_step - 1 extra items at an episode's
    # end are not counted), so this spacing replays `samples_per_insert`
    # samples per insert whatever the steps per call; batch_size /
    # samples_per_insert alone replayed learner_steps_per_call times too much.
    samples_per_insert = config.samples_per_insert or 32.
    super().__init__(
        actor=imitation_actor,
        learner=self.learner,
        min_observations=max(config.batch_size, config.min_replay_size),
        observations_per_step=(config.batch_size *
                               config.learner_steps_per_call /
                               samples_per_insert))

  def table_sizes(self) -> Dict[str, int]:
    """Current number of items per Reverb table."""
    return {name: info.current_size
            for name, info in self.replay_client.server_info().items()}
