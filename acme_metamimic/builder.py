"""MetaMimicBuilder: Acme's D4PG builder with an imitation path beside it.

What D4PG already does is inherited: the task table's dataset iterator is
`D4PGBuilder`'s, with `replay_table_name` set to the task table, and the task
actors' adder is its N-step adder without the constant priority function
(`make_adder`). MetaMimic adds

- `make_replay_tables`: the `imitation` table (prioritized sampling, removal of
  the lowest priority first) and the `task` table (uniform, FIFO), both on one
  Reverb server, and for D4PGfD a `demo` table that only the demos are
  written to, so that none is ever evicted;
- `make_imitation_adder`: `adders.ImitationRewardAdder`, writing each imitation
  step to both tables;
- `make_imitation_dataset_iterator` and `make_learner(..., priority_table=...)`:
  the imitation learner, Acme's D4PG learner with an XLA-compiled step that
  also writes the TD-error priorities of its batches back to Reverb
  (`learning.D4PGLearner`);
- `make_imitation_environment`: the demo-following environment of Algorithm 1;
- `make_demo_adder` and `make_task_dataset_iterator(..., demos=True)`: D4PGfD's
  demo transitions and the task learner's batches that mix them in.

Every learner gets its own Adam optimizers at the configured learning rates
(`D4PGBuilder.make_learner` would share the config's optimizer objects).
"""

import dataclasses
from typing import Iterator, List, Optional, Sequence, Tuple

from acme import adders as acme_adders
from acme import core
from acme import datasets
from acme import specs
from acme.adders import reverb as reverb_adders
from acme.agents.tf import actors
from acme.agents.tf.d4pg import agent as d4pg_agent
from acme.tf import variable_utils
from acme.utils import counting
from acme.utils import loggers
from acme_metamimic import actors as actors_lib
from acme_metamimic import adders
from acme_metamimic import config as config_lib
from acme_metamimic import learning
from acme_metamimic import rewards
from acme_metamimic.demonstrations import dataset as demo_dataset
from acme_metamimic.environments import imitation
import dm_env
import reverb
import sonnet as snt
import tensorflow as tf
import tree

_SAMPLERS = {
    'uniform': lambda config: reverb.selectors.Uniform(),
    'prioritized': lambda config: reverb.selectors.Prioritized(
        config.priority_exponent),
}
_REMOVERS = {
    'fifo': reverb.selectors.Fifo,
    'prioritized': reverb.selectors.MinHeap,
}


class MetaMimicBuilder(d4pg_agent.D4PGBuilder):
  """Builds MetaMimic's replay, adders, actors and learners from a config."""

  def __init__(self, config: config_lib.MetaMimicConfig):
    super().__init__(dataclasses.replace(
        config, replay_table_name=config_lib.TASK_TABLE))
    self._config: config_lib.MetaMimicConfig = self._config

  @property
  def config(self) -> config_lib.MetaMimicConfig:
    return self._config

  def _rate_limiter(self) -> reverb.rate_limiters.RateLimiter:
    config = self._config
    if config.samples_per_insert is None:
      return reverb.rate_limiters.MinSize(config.min_replay_size)
    return reverb.rate_limiters.SampleToInsertRatio(
        min_size_to_sample=config.min_replay_size,
        samples_per_insert=config.samples_per_insert,
        error_buffer=config.min_replay_size * 0.1 * config.samples_per_insert)

  def make_replay_tables(self, environment_spec: specs.EnvironmentSpec,
                         demo_table: bool = False) -> List[reverb.Table]:
    """The imitation and task tables (and D4PGfD's demo table), one server.

    Args:
      environment_spec: the plain environment's spec.
      demo_table: also make the `demo` table (D4PGfD). Only
        `make_demo_adder` writes to it, once, so its FIFO remover never runs
        while the demos fit (`check_demo_capacity`); its items have the task
        table's signature.
    """
    config = self._config
    imitation_spec = imitation.imitation_environment_spec(environment_spec)
    tables = [
        reverb.Table(
            name=config_lib.IMITATION_TABLE,
            sampler=_SAMPLERS[config.imitation_sampler](config),
            remover=_REMOVERS[config.imitation_remover](),
            max_size=config.max_replay_size,
            rate_limiter=self._rate_limiter(),
            signature=reverb_adders.NStepTransitionAdder.signature(
                imitation_spec, self._imitation_extras_spec(environment_spec))),
        reverb.Table(
            name=config_lib.TASK_TABLE,
            sampler=_SAMPLERS[config.task_sampler](config),
            remover=_REMOVERS[config.task_remover](),
            max_size=config.max_replay_size,
            rate_limiter=self._rate_limiter(),
            signature=reverb_adders.NStepTransitionAdder.signature(
                environment_spec, self._task_extras_spec(environment_spec))),
    ]
    if demo_table:
      tables.append(reverb.Table(
          name=config_lib.DEMO_TABLE,
          sampler=reverb.selectors.Uniform(),
          remover=reverb.selectors.Fifo(),
          max_size=config.max_replay_size,
          rate_limiter=reverb.rate_limiters.MinSize(1),
          signature=reverb_adders.NStepTransitionAdder.signature(
              environment_spec)))
    return tables

  def _imitation_extras_spec(self, environment_spec: specs.EnvironmentSpec):
    """The imitation items' extras: o_{t+1} for the inverse-dynamics loss."""
    if self._config.inverse_dynamics_weight > 0.:
      return adders.hindsight_extras_spec(environment_spec)
    return ()

  def _task_extras_spec(self, environment_spec: specs.EnvironmentSpec):
    """The task items' extras: greedy labels for the cloning term, if any."""
    if self._config.task_behaviour_cloning_labels == 'greedy':
      return adders.greedy_extras_spec(environment_spec)
    return ()

  def check_demo_capacity(self, num_demo_items: int):
    """Raises ValueError unless the demo table holds `num_demo_items`."""
    if num_demo_items > self._config.max_replay_size:
      raise ValueError(
          f'The demos make {num_demo_items:,} transitions, more than the demo '
          f'table holds (max_replay_size={self._config.max_replay_size:,}): '
          'the first would be evicted. Raise max_replay_size or train on '
          'fewer demos.')

  def make_task_dataset_iterator(
      self, replay_client: reverb.Client,
      demos: bool = False) -> Iterator[reverb.ReplaySample]:
    """Batches for the task learner: `D4PGBuilder`'s, or mixed with demos.

    With `demos` (D4PGfD), every batch holds `demo_batch_size()` items from
    the demo table and the rest from the task table, each part sampled and
    batched by Acme's `make_reverb_dataset` and the two concatenated (a
    fixed demo share per batch, as in Nair et al., 2017). Mixing single
    items instead (`sample_from_datasets`, as Acme's DQfD agent does, then
    batching) delivered about 0.3x the task table's batches per second
    alone, this 0.7-1.0x (bench/bench_demo_batches.py, docs/benchmarks.md);
    the 60-minute D4PGfD run that mixed items (docs/fidelity.md) took 28 %
    fewer learner steps per second than D4PG on the same machine.
    """
    if not demos:
      return self.make_dataset_iterator(replay_client)
    config = self._config
    demo_batch_size = self.demo_batch_size()
    task, demo = (
        datasets.make_reverb_dataset(
            table=table, server_address=replay_client.server_address,
            batch_size=batch_size)
        for table, batch_size in (
            (config_lib.TASK_TABLE, config.batch_size - demo_batch_size),
            (config_lib.DEMO_TABLE, demo_batch_size)))
    dataset = tf.data.Dataset.zip((task, demo)).map(
        lambda task, demo: tree.map_structure(
            lambda x, y: tf.concat([x, y], axis=0), task, demo))
    dataset = dataset.prefetch(config.prefetch_size)
    return iter(dataset)

  def demo_batch_size(self) -> int:
    """Demo items per task-learner batch: `demo_ratio` of it, at least 1."""
    config = self._config
    return min(max(1, round(config.demo_ratio * config.batch_size)),
               config.batch_size - 1)

  def make_imitation_dataset_iterator(
      self, replay_client: reverb.Client) -> Iterator[reverb.ReplaySample]:
    """Batches from the imitation table for the imitation learner."""
    dataset = datasets.make_reverb_dataset(
        table=config_lib.IMITATION_TABLE,
        server_address=replay_client.server_address,
        batch_size=self._config.batch_size,
        prefetch_size=self._config.prefetch_size)
    return iter(dataset)

  def make_imitation_reward(self) -> rewards.ImitationReward:
    config = self._config
    return rewards.ImitationReward(
        beta_image=config.beta_image,
        beta_body=config.beta_body,
        image_distance_scale=config.image_distance_scale,
        body_distance_scale=config.body_distance_scale,
        feature_distance_scale=config.feature_distance_scale,
        body_key=config.reward_body_key,
        scene_key=config.reward_scene_key)

  def make_early_termination(
      self, mode: Optional[str] = None) -> rewards.EarlyTermination:
    """The configured early termination, or another `mode` (evaluation)."""
    config = self._config
    return rewards.EarlyTermination(
        mode=mode or config.early_termination,
        cutoff=config.early_termination_cutoff,
        threshold=config.hand_to_target_threshold,
        final_cutoff=config.early_termination_final_cutoff,
        cutoff_schedule_steps=config.early_termination_schedule_steps)

  def make_imitation_adder(self,
                           replay_client: reverb.Client) -> acme_adders.Adder:
    """Writes imitation steps to both tables (imitation and task reward)."""
    config = self._config
    discount = config.discount
    if config.imitation_discount is not None:
      discount = {adders.IMITATION_REWARD: config.imitation_discount,
                  adders.TASK_REWARD: config.discount}
    return adders.ImitationRewardAdder(
        client=replay_client,
        n_step=config.n_step,
        discount=discount,
        reward=self.make_imitation_reward(),
        imitation_table=config_lib.IMITATION_TABLE,
        task_table=config_lib.TASK_TABLE,
        imitation_priority=config.initial_priority,
        max_in_flight_items=config.adder_max_in_flight_items,
        hindsight_goals=config.inverse_dynamics_weight > 0.)

  def make_adder(self, replay_client: reverb.Client) -> acme_adders.Adder:
    """The task actors' adder: `D4PGBuilder`'s, without a priority function.

    D4PG's adder gives every item priority `lambda x: 1.`; any priority
    function makes Acme convert each transition's columns to numpy first
    (`utils.calculate_priorities`). Without one the priority is 1.0 all the
    same, and the task actor loop runs 3.5 % faster (docs/benchmarks.md).
    """
    return self._n_step_adder(replay_client, self._config.replay_table_name)

  def make_demo_adder(self, replay_client: reverb.Client) -> acme_adders.Adder:
    """`make_adder`, writing to the demo table (D4PGfD's demos)."""
    return self._n_step_adder(replay_client, config_lib.DEMO_TABLE)

  def _n_step_adder(self, replay_client: reverb.Client,
                    table: str) -> acme_adders.Adder:
    config = self._config
    return reverb_adders.NStepTransitionAdder(
        priority_fns={table: None},
        client=replay_client,
        n_step=config.n_step,
        discount=config.discount,
        max_in_flight_items=config.adder_max_in_flight_items)

  def make_imitation_environment(
      self,
      environment: dm_env.Environment,
      demonstrations: Sequence[demo_dataset.Demonstration],
      seed: Optional[int] = None,
      curriculum: Optional[bool] = None,
      early_termination: Optional[str] = None
  ) -> imitation.ImitationEnvironment:
    """Algorithm 1's environment: demo start states, goals, early ends.

    Args:
      environment: the plain environment.
      demonstrations: demos to follow.
      seed: seeds demo sampling.
      curriculum: overrides `config.demo_curriculum`.
      early_termination: overrides `config.early_termination` ('none' lets an
        evaluator follow whole demos).
    """
    config = self._config
    return imitation.ImitationEnvironment(
        environment,
        demonstrations,
        reward=self.make_imitation_reward(),
        termination=self.make_early_termination(early_termination),
        curriculum=config.demo_curriculum if curriculum is None else curriculum,
        curriculum_max_step=config.curriculum_max_step,
        peak_fraction=config.curriculum_peak_fraction,
        peak_window=config.curriculum_peak_window,
        seed=seed)

  def make_actor(
      self,
      policy_network: snt.Module,
      adder: Optional[acme_adders.Adder] = None,
      variable_source: Optional[core.VariableSource] = None,
      variable_update_period: Optional[int] = None,
      cloned: bool = False) -> core.Actor:
    """A feed-forward actor, refreshing parameters periodically.

    D4PG's builder fixes the period at 1000 steps; here it is
    `config.variable_update_period`, or `variable_update_period` (1: every
    `update` call fetches, as the evaluator needs). With
    `config.numpy_actor_policy`, MLP policies run in numpy
    (`actors.NumpyFeedForwardActor`); other policies, and all with the flag
    off, use Acme's `FeedForwardActor`. An actor with an adder stores its
    noise-free action in the task items when
    `config.task_behaviour_cloning_labels` is 'greedy' (`clone_weight`);
    `cloned` says whether the task learner clones it (the imitation actors).
    """
    update_period = (variable_update_period or
                     self._config.variable_update_period)
    clone_weight = self.clone_weight(cloned) if adder else None
    if self._config.numpy_actor_policy:
      try:
        return actors_lib.NumpyFeedForwardActor(
            policy_network, adder, variable_source,
            update_period=update_period, clone_weight=clone_weight)
      except NotImplementedError as error:
        if clone_weight is not None:
          raise ValueError(
              "task_behaviour_cloning_labels='greedy' needs actors that "
              'store the noise-free action, which only numpy policies do; '
              f'this policy cannot run in numpy: {error}') from error
    variable_client = None
    if variable_source:
      variable_client = variable_utils.VariableClient(
          client=variable_source,
          variables={'policy': policy_network.variables},
          update_period=update_period)
      # Never act with random parameters after a restart.
      variable_client.update_and_wait()
    return actors.FeedForwardActor(policy_network, adder, variable_client)

  def clone_weight(self, cloned: bool) -> Optional[float]:
    """An actor's `clone_weight`: None unless the labels are 'greedy'."""
    if self._config.task_behaviour_cloning_labels != 'greedy':
      return None
    return 1. if cloned else 0.

  def make_learner(
      self,
      networks: Tuple[d4pg_agent.D4PGNetworks, d4pg_agent.D4PGNetworks],
      dataset: Iterator[reverb.ReplaySample],
      counter: Optional[counting.Counter] = None,
      logger: Optional[loggers.Logger] = None,
      checkpoint: bool = False,
      priority_table: Optional[str] = None,
      replay_client: Optional[reverb.Client] = None,
      discount: Optional[float] = None,
      inverse_dynamics_weight: float = 0.,
      behaviour_cloning_weight: float = 0.):
    """Acme's D4PG learner (compiled, fused priorities), own Adam optimizers.

    Args:
      networks: (online, target) networks.
      dataset: batches to learn from.
      counter: step counter.
      logger: learner logger.
      checkpoint: whether Acme checkpoints the learner.
      priority_table: if given, TD-error priorities of every sampled batch are
        written back to this table (the imitation learner).
      replay_client: the client of the server holding `priority_table`.
      discount: the learner's discount (default `config.discount`; the
        imitation learner's is `config.imitation_learner_discount()`).
      inverse_dynamics_weight: the weight of the hindsight inverse-dynamics
        loss (the imitation learner's is `config.inverse_dynamics_weight`;
        its dataset must carry hindsight goals, as `make_imitation_adder`
        writes them when that weight is positive).
      behaviour_cloning_weight: the weight of the regression of the policy
        on its batches' actions (the task learner's is
        `config.task_behaviour_cloning_weight`; whether it also trains the
        observation network is `config.task_behaviour_cloning_trains_torso`,
        and what it regresses on `config.task_behaviour_cloning_labels`).
    """
    config = self._config
    online, target = networks
    if priority_table is not None and replay_client is None:
      raise ValueError('priority_table needs a replay_client.')
    return learning.D4PGLearner(
        priority_table=priority_table,
        server_address=(replay_client.server_address
                        if priority_table is not None else None),
        priority_update_period=config.priority_update_period,
        steps_per_call=config.learner_steps_per_call,
        jit_compile=config.learner_jit_compile,
        policy_network=online.policy_network,
        critic_network=online.critic_network,
        observation_network=online.observation_network,
        target_policy_network=target.policy_network,
        target_critic_network=target.critic_network,
        target_observation_network=target.observation_network,
        policy_optimizer=snt.optimizers.Adam(config.policy_learning_rate),
        critic_optimizer=snt.optimizers.Adam(config.critic_learning_rate),
        clipping=config.clipping,
        discount=config.discount if discount is None else discount,
        target_update_period=config.target_update_period,
        inverse_dynamics_weight=inverse_dynamics_weight,
        behaviour_cloning_weight=behaviour_cloning_weight,
        behaviour_cloning_trains_torso=(
            config.task_behaviour_cloning_trains_torso),
        behaviour_cloning_labels=config.task_behaviour_cloning_labels,
        dataset_iterator=dataset,
        counter=counter,
        logger=logger,
        checkpoint=checkpoint)
