"""DistributedMetaMimic: the paper's actor/learner topology as a Launchpad program.

Node groups (each can be mapped to its own resources by a launcher):

    replay              one Reverb server holding the `imitation` and `task` tables
                        (checkpointed under <workdir>/replay)
    counter             shared step counter (checkpointed)
    coordinator         prints progress; at a learner-step or wall-clock limit
                        it checkpoints replay and writes <workdir>/summary.json,
                        the launcher's cue to print it and end the program
    imitation_learner   D4PG + Reverb priority updates on the imitation table
    task_learner        D4PG on the task table (D4PGfD: and the demo table)
    imitation_actor     N x Algorithm 1 (ImitationEnvironment + ImitationRewardAdder)
    task_actor          M x Algorithm 3 (plain env + N-step adder on the task table)
    evaluator           imitation policy on validation demos (style B) and on
                        training demos (style A); the task policy

Every node body is a method, as in Acme's `DistributedD4PG`; all agent pieces
come from `MetaMimicBuilder`. The paper's baselines (`baselines.BASELINES`) are
the same program: without imitation (D4PG, D4PGfD, D4PG + curriculum) it has
no imitation learner, actors or evaluators and the coordinator counts task
learner steps; task actors may start from demo states
(`CurriculumStartEnvironment`); D4PGfD writes the training demos (with their
actions) once, when its task learner first starts, into a `demo` table that
nothing else writes to and its task learner samples beside the task table.
Learners and the counter are wrapped in Acme's
`CheckpointingRunner` with fixed directories under the workdir, so starting the
program again with the same workdir resumes learner steps, optimizer state,
counts and replay.
"""

import copy
import json
import os
import signal
import subprocess
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import acme
from acme import specs
from acme.agents.tf.d4pg import agent as d4pg_agent
from acme.utils import counting
from acme.utils import loggers
from acme.utils.loggers import tf_summary
import dm_env
import launchpad as lp
import reverb
import tree

from acme_metamimic import actors as actors_lib
from acme_metamimic import baselines as baselines_lib
from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import counter_checkpoint
from acme_metamimic import csv_logs
from acme_metamimic import diagnostics
from acme_metamimic import learning
from acme_metamimic import networks as networks_lib
from acme_metamimic import replay_memory
from acme_metamimic import seeding
from acme_metamimic import workdirs
from acme_metamimic.demonstrations import dataset
from acme_metamimic.environments import imitation

EnvironmentFactory = Callable[[int], dm_env.Environment]
NetworkFactory = Callable[[specs.EnvironmentSpec, bool],
                          d4pg_agent.D4PGNetworks]
DemonstrationsFactory = Callable[[str], Sequence[dataset.Demonstration]]

TRAIN = 'train'
VALIDATION = 'validation'
SUMMARY_FILE = 'summary.json'
# Written once the D4PGfD demo transitions are in replay and replay has been
# checkpointed with them; a resumed run then does not insert them again.
DEMO_TRANSITIONS_MARKER = 'demo_transitions_inserted.json'
EVALUATORS = ('imitation_validation', 'imitation_train', 'task')
# What the imitation actors act with. 'joint_tracker' (issue 33's tracker-fed
# ablation): `diagnostics.joint_tracker_policy` plus the configured
# exploration noise, a PRIVILEGED UPPER BOUND of the task side, never a
# default: it measures what the task learner makes of the experience a
# tracking imitation policy would produce. Everything else is unchanged
# (adder, tables, both learners, task actors, evaluators).
IMITATION_POLICIES = ('learned', 'joint_tracker')
# The learner checkpoint's layout, in the workdir signature so that a workdir
# written in an older one is refused rather than resumed with counts lost.
# 2: counters (the learners', the counter node's) as JSON in a string variable
# (`counter_checkpoint`); before, Acme's pickled `SaveableAdapter` (workdirs
# with no format recorded).
CHECKPOINT_FORMAT = 2


# The launcher's pid, set in every node's environment by the launch scripts
# (`launcher_environment`).
LAUNCHER_ENV = 'METAMIMIC_LAUNCHER'
_watching_launcher = []


def write_summary(path: str, summary: Dict[str, Any]):
  """Writes a run's summary.json atomically (the launcher waits for it)."""
  with open(path + '.tmp', 'w') as f:
    json.dump(summary, f, indent=2, sort_keys=True)
  os.replace(path + '.tmp', path)


def launcher_environment() -> Dict[str, str]:
  """The variable with which nodes recognise their launcher (this process)."""
  return {LAUNCHER_ENV: str(os.getpid())}


LEARNER_GROUPS = ('imitation_learner', 'task_learner')


def gpu_available() -> bool:
  """Whether this host has an NVIDIA GPU (driver device files; no CUDA call)."""
  return os.path.exists('/dev/nvidiactl') and any(
      name.startswith('nvidia') and name[len('nvidia'):].isdigit()
      for name in os.listdir('/dev'))


def node_environment(group: str, learner_gpu: bool) -> Dict[str, str]:
  """What a node of `group` adds to its process environment on one host.

  Only the learners may see GPUs (`learner_gpu`): there, memory growth is on,
  so that both learners fit on one GPU (TensorFlow otherwise maps nearly all
  of a GPU's memory in the first process that starts on it). Every other node
  (actors, evaluator, replay, counter, coordinator) gets no GPU: none of them
  gains from one, and each would take GPU memory as TensorFlow starts.
  """
  if learner_gpu and group in LEARNER_GROUPS:
    return {'TF_FORCE_GPU_ALLOW_GROWTH': 'true'}
  return {'CUDA_VISIBLE_DEVICES': ''}


# Watches the launcher from outside the node: a node whose main thread is
# blocked in C++ holding the GIL (an actor flushing to a replay server that
# died with the launcher: over 10 s, measured) could not run a Python thread
# that would end it. $1 launcher pid, $2 node pid. A zombie launcher (killed,
# not yet reaped) counts as gone.
_WATCH_LAUNCHER = r"""
while [ -e /proc/$1 ] && [ "$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)" != Z ]
do
  [ -e /proc/$2 ] || exit 0
  sleep 1
done
kill -TERM $2 2>/dev/null
sleep $3
kill -KILL $2 2>/dev/null
"""


def end_with_launcher(grace_seconds: float = 5.):
  """Ends this node process soon after its launcher is gone.

  Launchpad's node processes outlive a launcher killed with SIGKILL (they
  are re-parented, and nothing tells them), so each node starts a small shell
  watcher of the launcher named in LAUNCHER_ENV: within a second of the
  launcher's end it stops the node the way the launcher would (SIGTERM:
  learners, counter and replay checkpoint) and kills it `grace_seconds`
  later if it is still there. A process without LAUNCHER_ENV (tests, other
  launchers) is not watched.

  A watched node also ignores SIGINT: a terminal's Ctrl+C reaches every
  process of the launcher's group, and Launchpad's handler would stop each
  node on its own and kill it 10 s later; the launcher stops them in order
  instead (launch/run_local.py, `stop_on_signals`).
  """
  value = os.environ.get(LAUNCHER_ENV)
  if not value or _watching_launcher:
    return
  _watching_launcher.append(True)
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
  subprocess.Popen(  # pylint: disable=consider-using-with
      ['/bin/sh', '-c', _WATCH_LAUNCHER, 'watch_launcher', value,
       str(os.getpid()), str(grace_seconds)],
      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL, start_new_session=True)


def make_logger(workdir: str, label: str, steps_key: Optional[str] = None,
                time_delta: float = 10., to_terminal: bool = False
                ) -> loggers.Logger:
  """CSV (<workdir>/logs/<label>/logs.csv) and TensorBoard (<workdir>/tb)."""
  destinations = [
      # Rows are few (one per `time_delta`): flush each so readers see them.
      loggers.CSVLogger(workdir, label=label, add_uid=False, flush_every=1),
      tf_summary.TFSummaryLogger(os.path.join(workdir, 'tb', label),
                                 label=label, steps_key=steps_key),
  ]
  if to_terminal:
    destinations.append(loggers.TerminalLogger(label=label))
  logger = loggers.Dispatcher(destinations)
  logger = loggers.NoneFilter(logger)
  return loggers.TimeFilter(logger, time_delta)


class DistributedMetaMimic:
  """Program definition for MetaMimic (imitation + task, shared replay)."""

  def __init__(
      self,
      environment_factory: EnvironmentFactory,
      network_factory: NetworkFactory,
      demonstrations_factory: DemonstrationsFactory,
      config: config_lib.MetaMimicConfig,
      workdir: str,
      max_learner_steps: Optional[int] = None,
      max_seconds: Optional[float] = None,
      environment_spec: Optional[specs.EnvironmentSpec] = None,
      log_every: float = 5.,
      checkpoint_minutes: float = 1.,
      baseline: baselines_lib.Baseline = baselines_lib.BASELINES['metamimic'],
      demo_transitions_factory: Optional[
          Callable[[], Sequence[dataset.Demonstration]]] = None,
      imitation_policy: str = 'learned',
  ):
    """Creates the program definition.

    Args:
      environment_factory: seed -> plain task environment (state settable).
      network_factory: (spec, goal_conditioned) -> D4PG networks; the spec is
        the imitation spec when goal_conditioned.
      demonstrations_factory: 'train' | 'validation' -> demonstrations.
      config: hyperparameters; its actor counts size the actor groups.
      workdir: where logs, checkpoints, replay checkpoints and the summary go.
      max_learner_steps: the coordinator ends the run once every learner
        (imitation and task; the task learner alone for baselines without
        imitation) has taken this many steps in total (across resumes).
      max_seconds: the coordinator ends the run after this much wall time.
      environment_spec: spec of the task environment (made if not given).
      log_every: seconds between log writes per node.
      checkpoint_minutes: period of learner, counter and replay checkpoints.
      baseline: which of the paper's agents the program is; its config
        overrides must already be applied to `config` (`Baseline.apply`).
      demo_transitions_factory: the training demos *with actions*; required
        when `baseline.demo_transitions` (D4PGfD).
      imitation_policy: one of `IMITATION_POLICIES`; 'joint_tracker' is the
        tracker-fed upper bound (the environment must be a `JacoStack`
        whose observations hold joint positions).
    """
    if imitation_policy not in IMITATION_POLICIES:
      raise ValueError(f'imitation_policy {imitation_policy!r}: expected one '
                       f'of {IMITATION_POLICIES}.')
    if imitation_policy != 'learned' and not baseline.imitation:
      raise ValueError(f'Baseline {baseline.name!r} has no imitation actors '
                       f'for imitation_policy={imitation_policy!r}.')
    self._imitation_policy = imitation_policy
    if not baseline.imitation and config.num_imitation_actors:
      raise ValueError(f'Baseline {baseline.name!r} has no imitation: apply it '
                       'to the config (num_imitation_actors=0) first.')
    if config.num_imitation_actors + config.num_task_actors < 1:
      raise ValueError('The program needs at least one actor.')
    if baseline.demo_transitions and demo_transitions_factory is None:
      raise ValueError(f'Baseline {baseline.name!r} inserts demo transitions: '
                       'give demo_transitions_factory.')
    if baseline.demo_transitions and config.task_behaviour_cloning_weight:
      raise ValueError(
          f'Baseline {baseline.name!r} samples demo actions: '
          'task_behaviour_cloning_weight would clone them; set it to 0.')
    if (baseline.demo_transitions and
        config.task_behaviour_cloning_labels == 'greedy'):
      raise ValueError(
          f'Baseline {baseline.name!r} samples demo transitions, which have '
          "no greedy labels: set task_behaviour_cloning_labels='executed'.")
    self._baseline = baseline
    self._demo_transitions_factory = demo_transitions_factory
    self._environment_factory = environment_factory
    self._network_factory = network_factory
    self._demonstrations_factory = demonstrations_factory
    self._config = config
    self._workdir = os.path.abspath(os.path.expanduser(workdir))
    self._max_learner_steps = max_learner_steps
    self._max_seconds = max_seconds
    self._log_every = log_every
    self._checkpoint_minutes = checkpoint_minutes
    self._builder = builder_lib.MetaMimicBuilder(config)
    self._environment_spec = environment_spec or specs.make_environment_spec(
        environment_factory(0))
    self._imitation_spec = imitation.imitation_environment_spec(
        self._environment_spec)

  def signature(self) -> Dict[str, object]:
    """What a workdir's checkpoints and replay depend on (see `workdirs`).

    The baseline (which nodes and tables exist), the run seed, every learner
    variable's name and shape, each table's item signature and capacity, and
    the learner checkpoint's layout, and the values of the config's
    network-shaping fields. A resumed run must match the workdir's;
    run_local adds the preset's name. The capacities are here because Reverb
    restores a table's options, its `max_size` too, from its checkpoint: a
    resume with another --max_replay_size would silently keep the old one.
    """
    networks = {}
    for label, goal_conditioned in (('imitation_learner', True),
                                    ('task_learner', False)):
      if goal_conditioned and not self._baseline.imitation:
        continue
      online = self._network_factory(self._environment_spec, goal_conditioned)
      online.init(self._imitation_spec if goal_conditioned
                  else self._environment_spec)
      networks[label] = workdirs.variable_shapes(
          dict(policy=online.policy_network, critic=online.critic_network,
               observation=online.observation_network))
    # The tables as the replay node makes them (no server is started), each
    # item field as 'path': 'dtype shape' in sorted order (a spec's dict order
    # differs between processes).
    tables, capacities = {}, {}
    for table in self._replay_tables():
      tables[table.name] = {
          '/'.join(map(str, path)): f'{spec.dtype.name} {spec.shape}'
          for path, spec in tree.flatten_with_path(table.info.signature)}
      capacities[table.name] = table.info.max_size
    # The network-shaping fields' values, so that evaluation builds the
    # run's networks whatever the preset's defaults are when it runs.
    network_config = {name: getattr(self._config, name)
                      for name in config_lib.NETWORK_FIELDS}
    return dict(baseline=self._baseline.name, seed=self._config.seed,
                imitation_policy=self._imitation_policy,
                network_config=network_config,
                networks=networks, tables=tables,
                table_capacities=capacities,
                checkpoint_format=CHECKPOINT_FORMAT)

  def replay_estimate(self) -> replay_memory.ReplayEstimate:
    """The replay node's memory at capacity (see `replay_memory`)."""
    return replay_memory.estimate(
        self._environment_spec, self._config,
        imitation_table=self._baseline.imitation,
        demo_table=self._baseline.demo_transitions)

  # Nodes.

  def replay(self) -> Sequence[reverb.Table]:
    """The Reverb tables (both live on this node's server)."""
    end_with_launcher()
    return self._replay_tables()

  def _replay_tables(self) -> List[reverb.Table]:
    return self._builder.make_replay_tables(
        self._environment_spec, demo_table=self._baseline.demo_transitions)

  def _replay_checkpointer(self) -> reverb.checkpointers.DefaultCheckpointer:
    return reverb.checkpointers.DefaultCheckpointer(
        os.path.join(self._workdir, 'replay'))

  def _steps_keys(self) -> Tuple[str, ...]:
    """The counter keys of this program's learners' step counts."""
    return (('imitation_learner_steps', 'task_learner_steps')
            if self._baseline.imitation else ('task_learner_steps',))

  def counter(self):
    end_with_launcher()
    runner = counter_checkpoint.CounterCheckpointingRunner(
        counter_checkpoint.CheckpointedCounter(), key='counter',
        subdirectory='counter',
        directory=self._workdir, add_uid=False,
        time_delta_minutes=self._checkpoint_minutes)
    # Every learner's step count exists from the start, at 0 (a resumed
    # run's restored counts are kept). Acme's CSVLogger fixes a log's
    # columns at its first row, and an evaluator's first episode ends before
    # the learners' first step: without this, its CSV never holds their
    # counts and report.py plots against evaluator env steps.
    runner.increment(**{key: 0 for key in self._steps_keys()})
    return runner

  def _learner(self, label: str, goal_conditioned: bool,
               replay: reverb.Client, counter: counting.Counter):
    # Seeds network initialisation (a resumed run restores its checkpoint).
    seeding.seed_process(self._config.seed, label)
    spec = self._imitation_spec if goal_conditioned else self._environment_spec
    online = self._network_factory(self._environment_spec, goal_conditioned)
    target = copy.deepcopy(online)
    online.init(spec)
    target.init(spec)
    if goal_conditioned:
      iterator = self._builder.make_imitation_dataset_iterator(replay)
    else:
      iterator = self._builder.make_task_dataset_iterator(
          replay, demos=self._baseline.demo_transitions)
    learner = self._builder.make_learner(
        (online, target), iterator,
        counter=counting.Counter(counter, label),
        logger=make_logger(self._workdir, label, f'{label}_steps',
                           self._log_every),
        priority_table=(config_lib.IMITATION_TABLE if goal_conditioned
                        else None),
        replay_client=replay,
        discount=(self._config.imitation_learner_discount()
                  if goal_conditioned else self._config.discount),
        inverse_dynamics_weight=(self._config.inverse_dynamics_weight
                                 if goal_conditioned else 0.),
        behaviour_cloning_weight=(
            0. if goal_conditioned
            else self._config.task_behaviour_cloning_weight))
    return learning.LearnerCheckpointingRunner(
        learner, key='learner', subdirectory=label,
        directory=self._workdir, add_uid=False,
        time_delta_minutes=self._checkpoint_minutes)

  def imitation_learner(self, replay: reverb.Client,
                        counter: counting.Counter):
    """The imitation learner (Algorithm 2), with priority updates."""
    end_with_launcher()
    return self._learner('imitation_learner', True, replay, counter)

  def task_learner(self, replay: reverb.Client, counter: counting.Counter):
    """The task learner (Algorithm 4); D4PGfD first inserts the demos."""
    end_with_launcher()
    if self._baseline.demo_transitions:
      self._insert_demo_transitions(replay)
    return self._learner('task_learner', False, replay, counter)

  def _insert_demo_transitions(self, replay: reverb.Client):
    """Writes the training demos into the demo table, once per workdir."""
    marker = os.path.join(self._workdir, DEMO_TRANSITIONS_MARKER)
    if os.path.exists(marker):
      return  # The replay checkpoint already holds them.
    demos = self._demo_transitions_factory()
    self._builder.check_demo_capacity(
        baselines_lib.num_demo_items(demos, self._config.n_step))
    written = baselines_lib.insert_demonstrations(
        demos, self._builder.make_demo_adder(replay))
    replay.checkpoint()
    os.makedirs(self._workdir, exist_ok=True)
    with open(marker, 'w') as f:
      json.dump({'demo_steps': written}, f)
    print(f'[metamimic] {self._baseline.name}: {written} demo steps written '
          'to the demo table', flush=True)

  def _loop(self, label: str, environment: dm_env.Environment,
            actor: acme.Actor, counter: counting.Counter,
            goal_conditioned: bool, to_terminal: bool = False,
            should_update: bool = True):
    observers = [imitation.ImitationMetricsObserver()] if goal_conditioned else ()
    return acme.EnvironmentLoop(
        environment, actor, counting.Counter(counter, label),
        make_logger(self._workdir, label, f'{label}_steps', self._log_every,
                    to_terminal),
        should_update=should_update,
        observers=observers)

  def _seed(self, node: str, index: int, stream: str) -> int:
    return seeding.node_seed(self._config.seed, node, index, stream)

  def _policy(self, goal_conditioned: bool, sigma):
    spec = self._imitation_spec if goal_conditioned else self._environment_spec
    networks = self._network_factory(self._environment_spec, goal_conditioned)
    networks.init(spec)
    return networks_lib.make_behavior_policy(networks, spec, sigma)

  def imitation_actor(self, replay: reverb.Client,
                      variable_source: acme.VariableSource,
                      counter: counting.Counter, actor_id: int):
    """An imitation actor (Algorithm 1) writing to both tables."""
    end_with_launcher()
    # Exploration noise: the policies draw it from TensorFlow's generator.
    seeding.seed_process(self._config.seed, 'imitation_actor', actor_id)
    environment = self._builder.make_imitation_environment(
        self._environment_factory(
            self._seed('imitation_actor', actor_id, seeding.ENVIRONMENT)),
        self._demonstrations_factory(TRAIN),
        seed=self._seed('imitation_actor', actor_id, seeding.DEMOS))
    if self._imitation_policy == 'joint_tracker':
      actor = actors_lib.FunctionActor(
          diagnostics.joint_tracker_policy(environment),
          adder=self._builder.make_imitation_adder(replay),
          sigma=self._config.exploration_sigma(),
          clone_weight=self._builder.clone_weight(cloned=True))
    else:
      actor = self._builder.make_actor(
          self._policy(True, self._config.exploration_sigma()),
          adder=self._builder.make_imitation_adder(replay),
          variable_source=variable_source, cloned=True)
    return self._loop('imitation_actor', environment, actor, counter, True)

  def task_actor(self, replay: reverb.Client,
                 variable_source: acme.VariableSource,
                 counter: counting.Counter, actor_id: int):
    """A task actor (Algorithm 3) writing to the task table."""
    end_with_launcher()
    seeding.seed_process(self._config.seed, 'task_actor', actor_id)
    actor = self._builder.make_actor(
        self._policy(False, self._config.task_exploration_sigma()),
        adder=self._builder.make_adder(replay),
        variable_source=variable_source)
    return self._loop('task_actor', self.task_environment(actor_id), actor,
                      counter, False)

  def task_environment(self, actor_id: int) -> dm_env.Environment:
    """A task actor's environment (from demo states under a curriculum)."""
    environment = self._environment_factory(
        self._seed('task_actor', actor_id, seeding.ENVIRONMENT))
    if self._baseline.task_curriculum:
      environment = baselines_lib.CurriculumStartEnvironment(
          environment, self._demonstrations_factory(TRAIN),
          max_step=self._config.curriculum_max_step,
          seed=self._seed('task_actor', actor_id, seeding.DEMOS))
    return environment

  def evaluator(self, imitation_source: Optional[acme.VariableSource],
                task_source: acme.VariableSource,
                counter: counting.Counter):
    """Greedy evaluation of every kind in `EVALUATORS`, in one node.

    One process instead of one per kind: each node imports TensorFlow and
    builds its environments (about 10 s of CPU on 2 cores), and the kinds take
    turns anyway, one episode each per period. Without an imitation learner
    (the task-only baselines) only 'task' runs.

    Each episode acts with the learner's parameters of the moment it starts,
    fixed for the whole episode: the actors fetch on every `update` call
    (period 1) and their loops never call it (`should_update=False`), so
    only `PeriodicEvaluator`'s call before each episode does. With the
    actors' period (100 steps) an episode began on the previous round's
    parameters and switched partway.
    """
    end_with_launcher()
    seeding.seed_process(self._config.seed, 'evaluator')
    loops_and_actors = []
    for index, kind in enumerate(EVALUATORS):
      goal_conditioned = kind != 'task'
      source = imitation_source if goal_conditioned else task_source
      if source is None:
        continue
      environment = self._environment_factory(
          self._seed('evaluator', index, seeding.ENVIRONMENT))
      if goal_conditioned:
        split = VALIDATION if kind == 'imitation_validation' else TRAIN
        # Evaluators follow whole demos, so returns compare across runs.
        environment = self._builder.make_imitation_environment(
            environment, self._demonstrations_factory(split),
            seed=self._seed('evaluator', index, seeding.DEMOS),
            curriculum=False, early_termination='none')
      actor = self._builder.make_actor(
          self._policy(goal_conditioned, 0.), variable_source=source,
          variable_update_period=1)
      loops_and_actors.append((self._loop(
          f'evaluator_{kind}', environment, actor, counter, goal_conditioned,
          should_update=False), actor))
    return PeriodicEvaluator(loops_and_actors,
                             self._config.evaluation_period_seconds)

  def coordinator(self, counter: counting.Counter, replay: reverb.Client):
    end_with_launcher()
    return Coordinator(
        counter, replay, self._workdir, self._max_learner_steps,
        self._max_seconds,
        steps_keys=self._steps_keys(),
        baseline=self._baseline.name,
        imitation_policy=self._imitation_policy,
        # A round is one episode of each kind, every evaluation period.
        stale_log_seconds=max(
            120., 4 * self._config.evaluation_period_seconds))

  def build(self, name: str = 'metamimic') -> lp.Program:
    """Builds the Launchpad program."""
    program = lp.Program(name=name)
    with program.group('replay'):
      replay = program.add_node(lp.ReverbNode(
          self.replay, checkpoint_ctor=self._replay_checkpointer,
          checkpoint_time_delta_minutes=self._checkpoint_minutes))
    with program.group('counter'):
      counter = program.add_node(lp.CourierNode(self.counter))
    with program.group('coordinator'):
      program.add_node(lp.CourierNode(self.coordinator, counter, replay))
    imitation_learner = None
    if self._baseline.imitation:
      with program.group('imitation_learner'):
        imitation_learner = program.add_node(
            lp.CourierNode(self.imitation_learner, replay, counter))
    with program.group('task_learner'):
      task_learner = program.add_node(
          lp.CourierNode(self.task_learner, replay, counter))
    if self._config.num_imitation_actors:
      with program.group('imitation_actor'):
        for actor_id in range(self._config.num_imitation_actors):
          program.add_node(lp.CourierNode(
              self.imitation_actor, replay, imitation_learner, counter,
              actor_id))
    if self._config.num_task_actors:
      with program.group('task_actor'):
        for actor_id in range(self._config.num_task_actors):
          program.add_node(lp.CourierNode(
              self.task_actor, replay, task_learner, counter, actor_id))
    with program.group('evaluator'):
      program.add_node(lp.CourierNode(self.evaluator, imitation_learner,
                                      task_learner, counter))
    return program


class PeriodicEvaluator:
  """Runs evaluators' Acme loops one episode each, on a schedule.

  An evaluator that loops without pause takes a full share of the CPU from
  the learners and the acting actors: on 2 cores, 3 of 11 busy processes.
  This one starts a round every `period_seconds` (at once if the last one
  took longer): one episode of each (loop, actor) pair in turn, each with its
  learner's latest parameters, fetched (`actor.update(wait=True)`) just
  before the episode, so its share is about round time / period. The actors
  must fetch on every update call and their loops must not update them
  mid-episode (`DistributedMetaMimic.evaluator`).
  `period_seconds=0` evaluates continuously.
  """

  def __init__(self,
               loops_and_actors: Sequence[Tuple[acme.EnvironmentLoop,
                                                acme.Actor]],
               period_seconds: float):
    self._loops_and_actors = list(loops_and_actors)
    self._period = period_seconds

  def run(self):
    # Launchpad's stop (SIGTERM) ends the wait between rounds at once; an
    # episode under way is ended by Acme's loop itself.
    stop = threading.Event()
    lp.register_stop_handler(stop.set)
    try:
      while not stop.is_set():
        start = time.time()
        self.run_round(stop)
        stop.wait(max(0., self._period - (time.time() - start)))
    finally:
      lp.unregister_stop_handler(stop.set)

  def run_round(self, stop: Optional[threading.Event] = None):
    """One episode of each loop, each on its learner's parameters of now."""
    for loop, actor in self._loops_and_actors:
      if stop is not None and stop.is_set():
        break
      actor.update(wait=True)
      loop.run(num_episodes=1)


class Coordinator:
  """Prints progress; writes the summary at the step or time limit."""

  def __init__(self, counter: counting.Counter, replay: reverb.Client,
               workdir: str, max_learner_steps: Optional[int],
               max_seconds: Optional[float], poll_seconds: float = 5.,
               steps_keys: Sequence[str] = ('imitation_learner_steps',
                                            'task_learner_steps'),
               baseline: str = 'metamimic',
               imitation_policy: str = 'learned',
               stale_log_seconds: float = 120.):
    self._counter = counter
    self._stale_log_seconds = stale_log_seconds
    self._steps_keys = tuple(steps_keys)
    self._baseline = baseline
    self._imitation_policy = imitation_policy
    self._replay = replay
    self._workdir = workdir
    self._max_learner_steps = max_learner_steps
    self._max_seconds = max_seconds
    self._poll_seconds = poll_seconds

  def _table_sizes(self) -> Dict[str, int]:
    return {name: info.current_size
            for name, info in self._replay.server_info().items()}

  def _held_out_return(self) -> str:
    """The latest held-out imitation return the evaluator logged, if any.

    Marked with its age once the log has not grown for `stale_log_seconds`:
    an evaluator that died mid-run (session 25's, on a MuJoCo PhysicsError)
    otherwise left its last return on every line as if it were current.
    """
    label = 'evaluator_imitation_validation'
    rows = csv_logs.read_csv_log(self._workdir, label)
    if not rows or 'imitation_return' not in rows[-1]:
      return ''
    text = f'  held-out imitation return {rows[-1]["imitation_return"]:.1f}'
    age = time.time() - os.path.getmtime(
        csv_logs.csv_log_path(self._workdir, label))
    if age > self._stale_log_seconds:
      text += f' (logged {age:.0f}s ago: is the evaluator running?)'
    return text

  def _done(self, counts: Dict[str, float], elapsed: float) -> bool:
    # Every learner: which one takes its first step first depends on the
    # machine's load (each traces its step as the tables fill). Ending on
    # the imitation learner's count alone, CI once ended a run at 120
    # imitation learner steps with no task learner step counted yet.
    steps = min(counts.get(key, 0) for key in self._steps_keys)
    return ((self._max_learner_steps is not None and
             steps >= self._max_learner_steps) or
            (self._max_seconds is not None and elapsed >= self._max_seconds))

  def run(self):
    start = time.time()
    counts_at_start = None
    while True:
      counts = self._counter.get_counts()
      elapsed = time.time() - start
      if counts_at_start is None:
        # A resumed run's counter starts from its checkpoint: the summary's
        # rates count only this launch's steps (run_local.print_summary).
        counts_at_start = counts
      sizes = self._table_sizes()
      print(f'[metamimic] {elapsed:6.0f}s  imitation learner steps '
            f'{counts.get("imitation_learner_steps", 0):.0f}  task learner '
            f'steps {counts.get("task_learner_steps", 0):.0f}  imitation '
            f'actor steps {counts.get("imitation_actor_steps", 0):.0f}  task '
            f'actor steps {counts.get("task_actor_steps", 0):.0f}  replay '
            f'imitation {sizes.get("imitation", 0)} task {sizes.get("task", 0)}'
            f'{self._held_out_return()}', flush=True)
      if self._done(counts, elapsed):
        break
      time.sleep(self._poll_seconds)
    self._replay.checkpoint()
    summary = dict(counts=counts, counts_at_start=counts_at_start,
                   elapsed_seconds=elapsed, baseline=self._baseline,
                   imitation_policy=self._imitation_policy,
                   steps_keys=list(self._steps_keys),
                   workdir=self._workdir, table_sizes=self._table_sizes())
    for kind in EVALUATORS:
      rows = csv_logs.read_csv_log(self._workdir, f'evaluator_{kind}')
      if rows:
        summary[f'evaluator_{kind}'] = dict(first=rows[0], last=rows[-1],
                                            episodes=len(rows))
    write_summary(os.path.join(self._workdir, SUMMARY_FILE), summary)
