"""Runs distributed MetaMimic as a Launchpad program on this machine.

    python launch/run_local.py --workdir=workdir/metamimic

On the embedded default (features preset, 3 imitation actors, 1 task actor)
it makes the demonstration sets if they are missing, trains for --max_seconds
(or --max_learner_steps), prints progress, and ends with a summary. Logs go to
<workdir>/logs (CSV) and <workdir>/tb (`tensorboard --logdir <workdir>/tb`).
Running it again with the same --workdir resumes from the checkpoints; a
workdir of another set-up, or with an unreadable checkpoint, is refused before
anything starts (--fresh moves it aside instead). If a replay, counter,
coordinator or learner node dies, the launcher stops the program and exits 1;
if the launcher dies, the nodes stop by themselves.
"""

import functools
import json
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import launchpad as lp
import psutil
from launchpad.nodes.python import local_multi_processing

from acme_metamimic import agent_distributed
from acme_metamimic import baselines
from acme_metamimic import config as config_lib
from acme_metamimic import console as console_lib
from acme_metamimic import evaluation
from acme_metamimic import presets
from acme_metamimic import replay_memory
from acme_metamimic import workdirs
from acme_metamimic.demonstrations import dataset
from acme_metamimic.demonstrations import recording

_PRESET = flags.DEFINE_string('preset', 'features',
                              f'One of {sorted(presets.PRESETS)}.')
_WORKDIR = flags.DEFINE_string('workdir', 'workdir/metamimic',
                               'Logs, checkpoints and the summary go here.')
_DEMOS = flags.DEFINE_string('demos', 'data/demos_train_features',
                             'Training demo set (style A).')
_VALIDATION_DEMOS = flags.DEFINE_string(
    'validation_demos', 'data/demos_validation_features',
    'Held-out demo set (style B).')
_MAKE_DEMOS = flags.DEFINE_bool('make_demos', True,
                                'Record missing demo sets first.')
_NUM_DEMOS = flags.DEFINE_integer('num_demos', 20,
                                  'Training demos to record if missing.')
_NUM_VALIDATION_DEMOS = flags.DEFINE_integer(
    'num_validation_demos', 10, 'Validation demos to record if missing.')
_DEMO_SEED = flags.DEFINE_integer(
    'demo_seed', 0, 'Seed of the demo sets recorded when missing (the '
    'held-out set\'s: this + 10,000). Kept apart from --seed, so that every '
    'training seed trains on and is evaluated with the same demos.')
_MAX_TRAIN_DEMOS = flags.DEFINE_integer(
    'max_train_demos', None, 'Train on the first this many demos of --demos '
    '(default: all of them).')
_NUM_IMITATION_ACTORS = flags.DEFINE_integer(
    'num_imitation_actors', config_lib.features_config().num_imitation_actors,
    'Imitation actors (the features preset\'s: 3, docs/fidelity.md).')
_NUM_TASK_ACTORS = flags.DEFINE_integer('num_task_actors', 1, 'Task actors.')
_MAX_LEARNER_STEPS = flags.DEFINE_integer(
    'max_learner_steps', None, 'Stop once each learner took this many steps '
    '(imitation and task; the task learner alone for the d4pg* baselines; '
    'counted across resumes).')
_MAX_SECONDS = flags.DEFINE_float('max_seconds', 240.,
                                  'Stop after this many seconds of training.')
_SEED = flags.DEFINE_integer(
    'seed', 0, 'The run\'s seed: network initialisation, every actor\'s '
    'environment, demo and curriculum sampling and exploration, each node '
    'its own stream (acme_metamimic/seeding.py); it also draws the learning '
    'rates of presets that do not fix them. Not the demo sets\' '
    '(--demo_seed). Recorded in run.json: a resume must give the same.')
_CURRICULUM = flags.DEFINE_bool('demo_curriculum', False,
                                'Start imitation episodes within demos.')
_BASELINE = flags.DEFINE_string(
    'baseline', 'metamimic', 'Which agent of the paper to run: one of '
    f'{sorted(baselines.BASELINES)} (d4pg* have no imitation actors).')
_IMITATION_POLICY = flags.DEFINE_enum(
    'imitation_policy', 'learned', list(agent_distributed.IMITATION_POLICIES),
    'What the imitation actors act with. joint_tracker: the hand-written '
    'joint tracker plus the configured exploration noise (issue 33\'s '
    'tracker-fed ablation), a PRIVILEGED UPPER BOUND of the task side and '
    'never a default; only for presets whose policy sees joint positions '
    '(body).')
_LAUNCH_TYPE = flags.DEFINE_string('launch_type', 'local_mp',
                                   'Launchpad launch type.')
_CHECKPOINT_MINUTES = flags.DEFINE_float(
    'checkpoint_minutes', 1., 'Minutes between checkpoints of learners, '
    'counter and replay (fractions too: the kill tests use 0.1).')

_FRESH = flags.DEFINE_bool(
    'fresh', False, 'Move an existing --workdir aside (to <workdir>.old-TIME) '
    'and start over, instead of resuming from it.')
_LEARNER_GPU = flags.DEFINE_enum(
    'learner_gpu', 'auto', ['auto', 'on', 'off'], 'Let the two learners use '
    'this host\'s GPU (they share it, with memory growth); no other node does. '
    '\'auto\': when an NVIDIA GPU is present.')
_VERBOSE = flags.DEFINE_bool(
    'verbose', False, 'Show every node\'s output here; by default it goes to '
    '<workdir>/logs/console.log and only progress, notices, errors and the '
    'summary are shown.')
_MAX_REPLAY_SIZE = flags.DEFINE_integer(
    'max_replay_size', None,
    'Items per replay table (default: the preset\'s, 100,000 for features). '
    'The run is refused before it starts if both tables at this capacity '
    'would exceed the memory available (replay_memory.py).')
_JIT_COMPILE = flags.DEFINE_bool(
    'jit_compile', True, 'Compile the learners\' SGD step with XLA '
    '(MetaMimicConfig.learner_jit_compile).')
_EVALUATE = flags.DEFINE_bool(
    'evaluate', False, 'After training, evaluate the final checkpoints with '
    'launch/evaluate.py on every held-out demo and every demo trained on '
    '(about a minute on 2 cores for 10 + 20; written to '
    '<workdir>/evaluation.json) and print its headline figures: held-out and '
    'training imitation as % of the demos\' task reward, the task policy\'s '
    'reach, lift and stack rates, and how many demos each covers.')
_CONFIG = flags.DEFINE_multi_string(
    'config', [], 'field=value: overrides one MetaMimicConfig field of the '
    'preset (repeatable), e.g. --config=vmax=400 --config=n_step=3. Fields '
    'with their own flag (actor counts, seed, curriculum, replay size, XLA) '
    'are refused. The overrides are recorded in the workdir\'s run.json; a '
    'resume must give the same.')
# MetaMimicConfig fields that have their own flag above.
_FLAG_FIELDS = ('num_imitation_actors', 'num_task_actors', 'seed',
                'demo_curriculum', 'learner_jit_compile', 'max_replay_size')

_NODE_ENV = {'TF_CPP_MIN_LOG_LEVEL': '2',
             'MUJOCO_GL': os.environ.get('MUJOCO_GL', 'egl')}


def learner_gpu() -> bool:
  """--learner_gpu resolved: 'auto' means when this host has an NVIDIA GPU."""
  if _LEARNER_GPU.value == 'auto':
    return agent_distributed.gpu_available()
  return _LEARNER_GPU.value == 'on'


def node_env(group: str, workdir: str):
  """A node's environment: GPU only for learners (`--learner_gpu`), the
  launcher's identity, so that nodes end themselves if the launcher dies,
  and a PATH whose `sed` passes their output on line by line
  (`console.line_buffered_sed_path`)."""
  return dict(_NODE_ENV, **agent_distributed.launcher_environment(),
              **agent_distributed.node_environment(group, learner_gpu()),
              PATH=console_lib.line_buffered_sed_path(workdir))


def config_overrides():
  """--config parsed into MetaMimicConfig kwargs (UsageError if invalid)."""
  try:
    overrides = config_lib.parse_overrides(_CONFIG.value, _FLAG_FIELDS)
    presets.make_config(_PRESET.value, **overrides)  # Its checks (vmax > vmin).
  except ValueError as e:
    raise app.UsageError(f'--config: {e}') from e
  return overrides


def check_flags():
  """Fails fast, naming the flag, on values the program cannot run with."""
  try:
    presets.get(_PRESET.value)
  except ValueError as e:
    raise app.UsageError(f'--preset: {e}') from e
  try:
    baseline = baselines.get(_BASELINE.value)
  except ValueError as e:
    raise app.UsageError(f'--baseline: {e}') from e
  if _NUM_IMITATION_ACTORS.value < 0 or _NUM_TASK_ACTORS.value < 0:
    raise app.UsageError('Actor counts must be non-negative.')
  if not baseline.imitation and _NUM_TASK_ACTORS.value == 0:
    raise app.UsageError(f'--baseline={baseline.name} has no imitation '
                         'actors: give --num_task_actors >= 1.')
  if _NUM_IMITATION_ACTORS.value + _NUM_TASK_ACTORS.value == 0:
    raise app.UsageError('--num_imitation_actors and --num_task_actors are '
                         'both 0: the program needs at least one actor.')
  if (_IMITATION_POLICY.value == 'joint_tracker' and
      'body' not in presets.get(_PRESET.value).observation_keys):
    raise app.UsageError(
        f'--imitation_policy=joint_tracker: --preset={_PRESET.value}\'s '
        'policy sees no joint positions (body), which the tracker needs.')
  if _IMITATION_POLICY.value != 'learned' and not baseline.imitation:
    raise app.UsageError(f'--imitation_policy: --baseline={baseline.name} '
                         'has no imitation actors.')
  for name, value in config_overrides().items():
    if baseline.config_overrides.get(name, value) != value:
      raise app.UsageError(
          f'--config={name}={value!r}: --baseline={baseline.name} sets it to '
          f'{baseline.config_overrides[name]!r}.')
  if _MAX_LEARNER_STEPS.value is None and not _MAX_SECONDS.value:
    raise app.UsageError('Give --max_learner_steps or --max_seconds.')
  for flag in (_DEMOS, _VALIDATION_DEMOS):
    if not os.path.isdir(flag.value) and not _MAKE_DEMOS.value:
      raise app.UsageError(f'--{flag.name}={flag.value} does not exist (pass '
                           '--make_demos to record it).')
  check_recorded_demos()
  min_replay_size = presets.make_config(
      _PRESET.value, **config_overrides()).min_replay_size
  if (_MAX_REPLAY_SIZE.value is not None and
      _MAX_REPLAY_SIZE.value < min_replay_size):
    raise app.UsageError(
        f'--max_replay_size={_MAX_REPLAY_SIZE.value}: learning starts once a '
        f'table holds {min_replay_size} items, so give at least that many.')
  if _MAX_TRAIN_DEMOS.value is not None and _MAX_TRAIN_DEMOS.value < 1:
    raise app.UsageError(f'--max_train_demos={_MAX_TRAIN_DEMOS.value}: give '
                         'a positive count (or leave it unset for all demos).')


def demo_sets():
  """(flag, style, seed, count) of the training and the held-out demo set."""
  return ((_DEMOS, 'A', _DEMO_SEED.value, _NUM_DEMOS.value),
          (_VALIDATION_DEMOS, 'B', _DEMO_SEED.value + 10_000,
           _NUM_VALIDATION_DEMOS.value))


def check_recorded_demos():
  """Refuses a demo set that --make_demos would have recorded otherwise.

  With --make_demos, a demo directory is where this script keeps what it
  records, so one recorded with another style or seed is stale: until
  --demo_seed existed, the sets under data/ took the seed of whichever
  run found them missing, and two machines trained on different demos
  under the same command (docs/fidelity.md). Without --make_demos the sets
  are the user's own and are taken as they are.
  """
  if not _MAKE_DEMOS.value:
    return
  for flag, style, seed, _ in demo_sets():
    if not os.path.isdir(flag.value):
      continue
    try:
      metadata = dataset.read_metadata(flag.value)
    except dataset.DemonstrationError as e:
      raise app.UsageError(str(e)) from e
    path = os.path.join(flag.value, dataset.METADATA_FILE)
    for field, expected in (('style', style), ('seed', seed)):
      if field in metadata and metadata[field] != expected:
        raise app.UsageError(
            f'{path}: {field} {metadata[field]!r}, but this run records '
            f'--{flag.name} with style {style} and seed {seed} '
            f'(--demo_seed={_DEMO_SEED.value}). Pass the --demo_seed it was '
            f'recorded with, another --{flag.name} directory, or '
            '--make_demos=false to use it as it is.')


def ensure_demos():
  """Records the demo sets that are missing; validates every episode of both.

  Reading every episode, not just the first, costs little (measured: the 20
  features demos of the default set load in 0.5 s, 1 s in a fresh process
  with TFDS's import), and a bad episode found here is a usage error naming
  its file and field rather than an error in a node after the program has
  started.
  """
  for flag, style, seed, count in demo_sets():
    path = flag.value
    if not os.path.isdir(path):
      print(f'[metamimic] recording {count} style-{style} demos -> {path}',
            flush=True)
      recording.record_demonstrations(
          style, count, presets.get(_PRESET.value).environment, seed, path)
    try:
      available = len(presets.load_demonstrations(_PRESET.value, path))
    except dataset.DemonstrationError as e:
      raise app.UsageError(str(e)) from e
    if path == _DEMOS.value:
      used = _MAX_TRAIN_DEMOS.value or available
      if used > available:
        raise app.UsageError(
            f'--max_train_demos={used}, but {path} holds only {available} '
            'demos.')
      print(f'[metamimic] training on the first {used} of {available} demos '
            f'in {path}', flush=True)


def make_program_definition(
    workdir: str, num_imitation_actors: int, num_task_actors: int,
    demo_paths=None) -> agent_distributed.DistributedMetaMimic:
  """The program definition the flags describe (shared by run_hosts/run_xm).

  `demo_paths` ('train'/'validation' -> path) defaults to the absolute
  --demos/--validation_demos paths.
  """
  baseline = baselines.get(_BASELINE.value)
  values = dict(
      num_imitation_actors=num_imitation_actors,
      num_task_actors=num_task_actors, seed=_SEED.value,
      demo_curriculum=_CURRICULUM.value, variable_update_period=100,
      learner_jit_compile=_JIT_COMPILE.value,
      **({} if _MAX_REPLAY_SIZE.value is None else dict(
          max_replay_size=_MAX_REPLAY_SIZE.value)))
  values.update(config_overrides())
  config = baseline.apply(presets.make_config(_PRESET.value, **values))
  if demo_paths is None:
    demo_paths = {agent_distributed.TRAIN: os.path.abspath(_DEMOS.value),
                  agent_distributed.VALIDATION: os.path.abspath(
                      _VALIDATION_DEMOS.value)}
  max_episodes = {agent_distributed.TRAIN: _MAX_TRAIN_DEMOS.value}
  demo_transitions_factory = None
  if baseline.demo_transitions:
    demo_transitions_factory = functools.partial(
        baselines.load_demonstrations_with_actions, _PRESET.value,
        demo_paths[agent_distributed.TRAIN],
        max_episodes=_MAX_TRAIN_DEMOS.value)
  return agent_distributed.DistributedMetaMimic(
      environment_factory=functools.partial(presets.make_environment,
                                            _PRESET.value),
      network_factory=functools.partial(presets.make_networks, _PRESET.value,
                                        config),
      demonstrations_factory=functools.partial(
          presets.load_demonstration_split, _PRESET.value, demo_paths,
          max_episodes=max_episodes),
      config=config,
      workdir=workdir,
      max_learner_steps=_MAX_LEARNER_STEPS.value,
      max_seconds=_MAX_SECONDS.value,
      checkpoint_minutes=_CHECKPOINT_MINUTES.value,
      baseline=baseline,
      demo_transitions_factory=demo_transitions_factory,
      imitation_policy=_IMITATION_POLICY.value)


def check_replay_memory(definition: agent_distributed.DistributedMetaMimic):
  """Refuses a replay capacity this machine's memory cannot hold.

  Before the workdir is touched or a demo recorded: the estimate of
  `replay_memory` from the tables' real item shapes, against the memory
  available now.
  """
  replay = definition.replay_estimate()
  try:
    replay_memory.check_fits(replay)
  except replay_memory.ReplayMemoryError as e:
    raise app.UsageError(str(e)) from e
  print(f'[metamimic] replay at capacity: {replay.describe()}', flush=True)


def prepare_workdir(workdir: str,
                    definition: agent_distributed.DistributedMetaMimic):
  """Refuses a workdir the run cannot use, before anything is recorded.

  See `workdirs`: the place, the set-up recorded in its run.json (preset,
  baseline, variable shapes, table signatures), and readable checkpoints.
  """
  try:
    signature = dict(preset=_PRESET.value, config_overrides=dict(
        sorted(config_overrides().items())), **definition.signature())
    moved = workdirs.prepare(workdir, signature, fresh=_FRESH.value)
  except workdirs.WorkdirError as e:
    raise app.UsageError(str(e)) from e
  if moved:
    print(f'[metamimic] --fresh: moved the old workdir to {moved}',
          flush=True)


def main(argv):
  del argv
  check_flags()
  workdir = os.path.abspath(_WORKDIR.value)
  definition = make_program_definition(workdir, _NUM_IMITATION_ACTORS.value,
                                       _NUM_TASK_ACTORS.value)
  check_replay_memory(definition)
  prepare_workdir(workdir, definition)
  ensure_demos()
  summary_path = os.path.join(workdir, agent_distributed.SUMMARY_FILE)
  if os.path.exists(summary_path):
    os.remove(summary_path)
  program = definition.build()
  resources = {group: local_multi_processing.PythonProcess(
                   env=node_env(group, workdir))
               for group in program.groups}
  if _IMITATION_POLICY.value == 'joint_tracker':
    print('[metamimic] --imitation_policy=joint_tracker: the imitation actors '
          'act with the hand-written joint tracker, a privileged upper bound '
          'of the task side (not MetaMimic)', flush=True)
  if learner_gpu():
    print('[metamimic] learners may use the GPU (--learner_gpu); other nodes '
          'do not', flush=True)
  start = time.time()
  console = None
  if not _VERBOSE.value:
    console = console_lib.CalmConsole(workdir)
    print(f'[metamimic] node output goes to {console.log_path} '
          '(--verbose shows it here)', flush=True)
  dead = []
  stopped = None
  cpu_seconds = None
  try:
    lp.launch(program, launch_type=_LAUNCH_TYPE.value,
              terminal='current_terminal', local_resources=resources)
    stop_on_signals()
    wait_for_node_processes(program)
    dead = wait_for(summary_path)
    # Read before stop_nodes: an ended process has no CPU times to read.
    cpu_seconds = node_cpu_seconds()
  except Stopped as e:
    stopped = e
    print(f'[metamimic] {e}: stopping the nodes (learners and counter '
          'checkpoint)', flush=True)
  finally:
    # Nodes that used a dead node (actors of a dead replay server) may not
    # answer SIGTERM: give them 5 s, not 20 (measured: 62 s to end the
    # program after a replay node was killed, with 20 s per stage).
    stop_nodes(grace_seconds=5. if dead else 20.)
    if console is not None:
      console.close()
  if stopped:
    print(f'[metamimic] stopped by {stopped}; run the same command to resume '
          f'from {workdir}', flush=True)
    sys.exit(128 + stopped.signum)
  end_on_dead_nodes(dead, workdir)
  if not os.path.exists(summary_path):
    logging.error('The program ended without a summary; see the node output '
                  'above and the logs under %s.', workdir)
    sys.exit(1)
  with open(summary_path) as f:
    summary = json.load(f)
  if cpu_seconds:
    summary['cpu_seconds'] = cpu_seconds
    agent_distributed.write_summary(summary_path, summary)
  print_summary(summary, time.time() - start)
  if _EVALUATE.value:
    evaluate(workdir, _PRESET.value, _DEMOS.value, _VALIDATION_DEMOS.value,
             _MAX_TRAIN_DEMOS.value)


def evaluate(workdir: str, preset: str, demos: str, validation_demos: str,
             max_train_demos: Optional[int] = None):
  """launch/evaluate.py on the run's checkpoints; prints its headline lines.

  Every held-out demo and every training demo the run trained on (the first
  `max_train_demos` of `demos`, all by default) is followed once; the
  headline says how many. evaluate.py's own seed (0) is kept whatever the
  training seed, as docs/results/screen.sh and compare_baselines.py
  evaluate. Exits 1 with evaluate.py's output if it fails.
  """
  output = os.path.join(workdir, workdirs.EVALUATION_FILE)
  trained = ('every demo' if max_train_demos is None
             else f'the first {max_train_demos} demos')
  print(f'[metamimic] evaluating the final policies on every demo of '
        f'{validation_demos} and {trained} of {demos} -> {output}',
        flush=True)
  command = [sys.executable, os.path.join(os.path.dirname(__file__),
                                          'evaluate.py'),
             f'--workdir={workdir}', f'--preset={preset}', f'--demos={demos}',
             f'--validation_demos={validation_demos}', f'--output={output}']
  if max_train_demos is not None:
    command.append(f'--max_train_demos={max_train_demos}')
  result = subprocess.run(command, capture_output=True, text=True,
                          check=False)
  if result.returncode:
    print(result.stdout[-3000:] + result.stderr[-3000:], file=sys.stderr)
    logging.error('launch/evaluate.py failed (exit %d): %s',
                  result.returncode, ' '.join(command))
    sys.exit(1)
  with open(output) as f:
    lines = evaluation.headline(json.load(f)['metrics'])
  print('\n'.join(['', '=== Evaluation (greedy, each demo once) ===', *lines,
                   f'evaluation            {output}']), flush=True)


def _node_processes():
  """(group, process) for every node process; group '' if unknown."""
  nodes = []
  for process in psutil.Process().children(recursive=True):
    try:
      command = process.cmdline()
      # (The node's `decorate_output` wrapper, a bash script, has the node's
      # command too.)
      if 'process_entry.py' in ' '.join(command) and not any(
          part.endswith('decorate_output') for part in command[:2]):
        # Launchpad's current-terminal launcher runs each node under
        # `[/bin/bash] decorate_output COLOUR TITLE command...`, with TITLE
        # 'group/index'.
        wrapper = process.parent().cmdline()
        group = ''
        for i, part in enumerate(wrapper[:2]):
          if part.endswith('decorate_output') and len(wrapper) > i + 2:
            group = wrapper[i + 2].split('/')[0]
        nodes.append((group, process))
    except psutil.Error:  # Ended (or a zombie) between listing and reading.
      pass
  return nodes


def wait_for_node_processes(program: lp.Program,
                            timeout_seconds: float = 60.):
  """After lp.launch: waits until every node of `program` runs as a process.

  lp.launch returns once it has started each node's `decorate_output`
  wrapper, which forks the node itself a moment later; until then
  `_node_processes` does not list that node. The actor host, which watches
  its nodes while any of them runs, saw none right after lp.launch and
  stopped them all at once (tests/multihost_test.py, 2 runs of 2 on
  2026-11-27), and a stop in that moment would miss a node.
  """
  expected = sum(len(nodes) for nodes in program.groups.values())
  deadline = time.time() + timeout_seconds
  while len(_node_processes()) < expected and time.time() < deadline:
    time.sleep(0.1)


def node_cpu_seconds() -> Dict[str, float]:
  """CPU seconds (user + system) used so far, by node group and launcher.

  Read at the end of a run, before the nodes stop, it says where this
  launch's CPU went (start-up included: each node imports TensorFlow). The
  summary stores it as `cpu_seconds` and prints each group's share, e.g. the
  evaluators' (issue 14: at most 10 % of the CPU by default). A node that
  ended before (a killed actor) is missing: its times went with it.
  """
  totals = {}
  for group, process in _node_processes():
    try:
      times = process.cpu_times()
    except psutil.Error:  # Ended between listing and reading.
      continue
    group = group or 'other'
    totals[group] = totals.get(group, 0.) + times.user + times.system
  times = psutil.Process().cpu_times()
  totals['launcher'] = times.user + times.system
  return {group: round(seconds, 1) for group, seconds in sorted(totals.items())}


def rates_and_cpu_lines(summary) -> List[str]:
  """Summary lines: this launch's steps per second and CPU by node group.

  The rates are the steps counted since the coordinator's first poll
  (`counts_at_start`: a resumed run's counter starts from its checkpoint)
  over the coordinator's `elapsed_seconds`; the CPU shares come from
  `node_cpu_seconds`, read as the run ended.
  """
  counts = summary['counts']
  at_start = summary.get('counts_at_start') or {}
  elapsed = summary.get('elapsed_seconds')
  lines = []
  if elapsed:
    def rate(key):
      return (counts.get(key, 0) - at_start.get(key, 0)) / elapsed
    learners = ', '.join(f'{kind} {rate(f"{kind}_learner_steps"):.1f}'
                         for kind in ('imitation', 'task'))
    actors = ', '.join(f'{kind} {rate(f"{kind}_actor_steps"):.1f}'
                       for kind in ('imitation', 'task'))
    lines += [f'learner steps/s       {learners}',
              f'actor env steps/s     {actors}']
  cpu = summary.get('cpu_seconds')
  if cpu:
    total = sum(cpu.values())
    shares = ', '.join(f'{group} {100 * seconds / total:.0f} %'
                       for group, seconds in sorted(
                           cpu.items(), key=lambda item: -item[1]))
    lines.append(f'CPU by node group     {shares} (of {total:.0f} CPU-s)')
  return lines


# Without any one of these nodes nothing can learn, so one that ends before
# the summary ends the program. A dead actor or evaluator does not: the rest
# go on (tests/program_test.py kills an actor).
ESSENTIAL_GROUPS = ('replay', 'counter', 'coordinator', 'imitation_learner',
                    'task_learner')


def _alive(process: psutil.Process) -> bool:
  try:
    return process.status() != psutil.STATUS_ZOMBIE
  except psutil.Error:
    return False


class Stopped(Exception):
  """The launcher got SIGINT (Ctrl+C) or SIGTERM; `signum` says which."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


def _raise_stopped(signum, unused_frame):
  raise Stopped(signum)


def stop_on_signals():
  """Call after lp.launch: SIGINT and SIGTERM then raise `Stopped` here.

  lp.launch's WorkerManager takes both signals for itself: it SIGTERMs every
  node at once (actors, learners and replay together) and SIGKILLs them all
  10 s later, learners in the middle of their stop checkpoints included (seen
  in tests/program_test.py). With these handlers the signal ends the wait,
  and the launcher's `finally` stops the nodes in order (`stop_nodes`), as at
  the end of a run. The nodes ignore SIGINT themselves
  (`agent_distributed.end_with_launcher`), so a terminal's Ctrl+C, which
  reaches the whole process group, stops them only through the launcher.
  """
  signal.signal(signal.SIGINT, _raise_stopped)
  signal.signal(signal.SIGTERM, _raise_stopped)


def wait_for(summary_path: str, poll_seconds: float = 1.) -> List[str]:
  """Waits until the coordinator wrote the summary or a node died.

  Returns the essential groups (`ESSENTIAL_GROUPS`) whose node ended before
  the summary was written: empty on a normal end, or when every node ended.
  The launcher watches the processes rather than the coordinator watching
  RPCs: a process that ended is a fact, a slow RPC only a guess. An actor or
  evaluator that ends is logged once, and the run goes on: an evaluator
  killed by a MuJoCo error went unnoticed for half of a 60-minute run
  (docs/fidelity.md, Session 25), its last numbers still on the console.
  """
  watched = {}
  expendable = {}
  reported = set()
  while not os.path.exists(summary_path):
    time.sleep(poll_seconds)
    nodes = _node_processes()
    if not nodes:
      return []
    for group, process in nodes:
      if group in ESSENTIAL_GROUPS:
        watched.setdefault(group, process)
      else:
        expendable.setdefault(process.pid, (group, process))
    for pid, (group, process) in expendable.items():
      if (pid not in reported and not _alive(process) and
          not os.path.exists(summary_path)):
        # A notice (console.MARK), so that the calm console shows it.
        print(f'{console_lib.MARK} Node {group} (pid {pid}) ended '
              'unexpectedly; the run goes on without it (its traceback, if '
              'any, is above and in <workdir>/logs/console.log).', flush=True)
        reported.add(pid)
    dead = sorted(group for group, process in watched.items()
                  if not _alive(process))
    if dead and not os.path.exists(summary_path):
      return dead
  return []


def end_on_dead_nodes(dead: Sequence[str], workdir: str):
  """After stop_nodes: exits non-zero naming the dead nodes and the workdir."""
  if dead:
    logging.error('Node %s ended unexpectedly, so the program was stopped. '
                  '%s keeps the last complete checkpoints: run the same '
                  'command again to resume from them.', ', '.join(dead),
                  workdir)
    sys.exit(1)


# Nodes that write to replay stop first, so that their last items are flushed
# while the replay server still runs (stopped together, each actor waited 10 s
# for a flush that could not complete); then the learners (they checkpoint),
# then replay, counter and coordinator.
_STOP_ORDER = (('imitation_actor', 'task_actor', 'evaluator'),
               agent_distributed.LEARNER_GROUPS)


def stop_nodes(grace_seconds: float = 20.):
  """Ends the program: SIGTERM (nodes checkpoint), then SIGKILL stragglers.

  Stage by stage (`_STOP_ORDER`), each given `grace_seconds`.

  Launchpad's own stop path kills the launcher too (exit 137); ending the
  nodes here lets the launcher print the summary and exit 0.
  """
  nodes = _node_processes()
  stages = [[p for g, p in nodes if g in groups] for groups in _STOP_ORDER]
  staged = {p.pid for stage in stages for p in stage}
  stages.append([p for _, p in nodes if p.pid not in staged])
  for stage in stages:
    for process in stage:
      try:
        process.send_signal(signal.SIGTERM)
      except psutil.NoSuchProcess:
        pass
    _, alive = psutil.wait_procs(stage, timeout=grace_seconds)
    for process in alive:
      logging.warning('Node %s did not stop in %.0fs; killing it.',
                      process.pid, grace_seconds)
      process.kill()


def print_summary(summary, wall_seconds: float):
  counts = summary['counts']
  lines = ['', '=== MetaMimic summary ===',
           f'agent                 {summary.get("baseline", "metamimic")}'
           + (' (imitation actors: the joint tracker, a privileged upper '
              'bound)' if summary.get('imitation_policy') == 'joint_tracker'
              else ''),
           f'wall time             {wall_seconds:.0f} s',
           f'imitation learner     {counts.get("imitation_learner_steps", 0):.0f}'
           ' steps',
           f'task learner          {counts.get("task_learner_steps", 0):.0f} steps',
           f'imitation actors      {counts.get("imitation_actor_steps", 0):.0f}'
           ' env steps',
           f'task actors           {counts.get("task_actor_steps", 0):.0f} env steps',
           f'replay items          {summary["table_sizes"]}']
  lines += rates_and_cpu_lines(summary)
  for kind, what in (('imitation_validation', 'imitation return, held-out demos'),
                     ('imitation_train', 'imitation return, training demos')):
    log = summary.get(f'evaluator_{kind}')
    if log:
      lines.append(f'{what:34s} start {log["first"].get("imitation_return", 0):.1f}'
                   f'  end {log["last"].get("imitation_return", 0):.1f}'
                   f'  ({log["episodes"]} logged episodes)')
  log = summary.get('evaluator_task')
  if log:
    lines.append(f'{"task return, task policy":34s} start '
                 f'{log["first"].get("episode_return", 0):.2f}  end '
                 f'{log["last"].get("episode_return", 0):.2f}')
  lines += [f'logs (CSV)            {summary["workdir"]}/logs',
            f'TensorBoard           tensorboard --logdir {summary["workdir"]}/tb',
            f'summary               {summary["workdir"]}/summary.json']
  print('\n'.join(lines), flush=True)


if __name__ == '__main__':
  app.run(main)
