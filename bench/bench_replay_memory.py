"""The Reverb server's memory with both tables full, against the estimate.

A Reverb server with MetaMimic's two tables (`make_replay_tables`, capacity
--max_replay_size) runs in a child process, as the replay node does. Real
steps go in through the real adders: imitation-actor steps of an
`ImitationEnvironment` following scripted demos, through `ImitationRewardAdder`
(both tables), and task-actor steps of the plain environment through the
N-step adder (task table), in the main job's 2:1 ratio, random actions. The
steps are recorded once and replayed in a loop (episodes intact) until
--fill times the capacity has been written, so both tables are at capacity
and removing. Priorities of sampled imitation items are set at random all
along, as the learner's TD errors do, so prioritized removal takes items from
everywhere in the table, not only the oldest.

Prints the server's RSS growth over the empty server and
`replay_memory.estimate` for the same tables, and their ratio:

  .venv/bin/python bench/bench_replay_memory.py --preset=features \
      --max_replay_size=100000

With --table, prints instead the Markdown table of docs/reliability.md from
the stored measurements (docs/results/replay_memory/*.json), each against
today's estimate:

  .venv/bin/python bench/bench_replay_memory.py --table
"""

import argparse
import json
import multiprocessing
import os
import time

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
from acme import specs
import numpy as np
import psutil
import reverb

from acme_metamimic import builder as builder_lib
from acme_metamimic import config as config_lib
from acme_metamimic import presets
from acme_metamimic import replay_memory
from acme_metamimic.demonstrations import scripted
# pylint: enable=g-import-not-at-top,wrong-import-position


def _builder(max_replay_size: int):
  config = config_lib.features_config(max_replay_size=max_replay_size,
                                      min_replay_size=1)
  return config, builder_lib.MetaMimicBuilder(config)


def _serve(preset, max_replay_size, port, ready):
  _, builder = _builder(max_replay_size)
  spec = specs.make_environment_spec(presets.make_environment(preset, 0))
  server = reverb.Server(builder.make_replay_tables(spec), port=port)
  ready.set()
  server.wait()


def _record_steps(environment, num_steps, rng, action_spec):
  """`num_steps` (action, timestep) pairs, whole episodes, random actions."""
  steps = []
  while len(steps) < num_steps:
    steps.append((None, environment.reset()))
    while not steps[-1][1].last():
      action = rng.uniform(action_spec.minimum, action_spec.maximum,
                           action_spec.shape).astype(action_spec.dtype)
      steps.append((action, environment.step(action)))
  return steps


def _replay(adder, steps, count):
  """Feeds the recorded episodes to `adder` in a loop: `count` steps or more.

  Only whole episodes: actors never reset an adder mid-episode (Reverb's
  writer keeps the pending partial step then).
  """
  written = 0
  while True:
    for action, timestep in steps:
      if action is None:
        adder.add_first(timestep)
      else:
        adder.add(action, timestep)
        written += 1
        if timestep.last() and written >= count:
          return written


def measure(preset: str, max_replay_size: int, fill: float,
            recorded_steps: int = 3000, seed: int = 0) -> dict:
  """Fills a child-process server; returns the measured and estimated bytes."""
  import portpicker  # pylint: disable=g-import-not-at-top
  config, builder = _builder(max_replay_size)
  environment = presets.make_environment(preset, seed)
  spec = specs.make_environment_spec(environment)
  rng = np.random.default_rng(seed)
  demos = [scripted.record_demonstration(
      presets.make_environment(preset, seed + 1 + i),
      scripted.ScriptedDemonstrator('A', seed=seed + i), episode_id=i)
           for i in range(3)]
  imitation_steps = _record_steps(
      builder.make_imitation_environment(environment, demos, seed=seed),
      recorded_steps, rng, spec.actions)
  task_steps = _record_steps(presets.make_environment(preset, seed + 100),
                             recorded_steps // 2, rng, spec.actions)

  port = portpicker.pick_unused_port()
  context = multiprocessing.get_context('spawn')
  ready = context.Event()
  server = context.Process(target=_serve,
                           args=(preset, max_replay_size, port, ready),
                           daemon=True)
  server.start()
  try:
    if not ready.wait(120):
      raise RuntimeError('The Reverb server did not start within 120 s.')
    time.sleep(2.)
    rss = lambda: psutil.Process(server.pid).memory_info().rss
    empty_rss = rss()
    client = reverb.Client(f'localhost:{port}')
    imitation_adder = builder.make_imitation_adder(client)
    task_adder = builder.make_adder(client)
    start = time.time()
    total = int(fill * max_replay_size)
    chunk = 1000
    imitation_written = task_written = 0
    while imitation_written < total:
      imitation_written += _replay(imitation_adder, imitation_steps, chunk)
      task_written += _replay(task_adder, task_steps, chunk // 2)
      # The learner's priority updates, at random.
      keys = [sample.info.key for sample in client.sample(
          config_lib.IMITATION_TABLE, num_samples=256, emit_timesteps=False)]
      client.mutate_priorities(config_lib.IMITATION_TABLE, dict(
          zip(keys, rng.uniform(0., 10., len(keys)).tolist())))
    seconds = time.time() - start
    time.sleep(2.)
    sizes = {name: info.current_size
             for name, info in client.server_info().items()}
    measured = rss() - empty_rss
  finally:
    server.terminate()
    server.join(10)
  replay = replay_memory.estimate(spec, config)
  return dict(
      preset=preset, max_replay_size=max_replay_size,
      imitation_steps_written=imitation_written,
      task_steps_written=task_written,
      table_sizes=sizes, fill_seconds=round(seconds, 1),
      server_rss_empty_mib=round(empty_rss / 2**20, 1),
      rss_growth_mib=round(measured / 2**20, 1),
      estimate_mib=round(replay.total_bytes / 2**20, 1),
      estimate_over_measured=round(replay.total_bytes / measured, 3),
      imitation_step_bytes=replay_memory.step_bytes(spec, True),
      task_step_bytes=replay_memory.step_bytes(spec, False))


RESULTS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'docs', 'results', 'replay_memory')


def table(results_dir: str = RESULTS) -> str:
  """Markdown rows: each stored measurement against today's estimate."""
  lines = ['| preset | items per table | written (imitation / task steps) '
           '| RSS growth | estimate | estimate / measured |',
           '|---|---|---|---|---|---|']
  rows = []
  for name in sorted(os.listdir(results_dir)):
    with open(os.path.join(results_dir, name)) as f:
      rows.append(json.load(f))
  for row in sorted(rows, key=lambda r: (r['preset'], r['max_replay_size'])):
    spec = specs.make_environment_spec(
        presets.make_environment(row['preset'], 0))
    replay = replay_memory.estimate(spec, config_lib.features_config(
        max_replay_size=row['max_replay_size']))
    measured = row['rss_growth_mib'] * 2**20
    lines.append(
        f"| {row['preset']} | {row['max_replay_size']:,} | "
        f"{row['imitation_steps_written']:,} / {row['task_steps_written']:,} "
        f"| {row['rss_growth_mib']:.1f} MiB | "
        f"{replay.total_bytes / 2**20:.1f} MiB | "
        f"{replay.total_bytes / measured:.2f} |")
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--preset', default='features',
                      choices=sorted(presets.PRESETS))
  parser.add_argument('--max_replay_size', type=int, default=100_000)
  parser.add_argument('--fill', type=float, default=2.,
                      help='Imitation steps written, in table capacities.')
  parser.add_argument('--recorded_steps', type=int, default=3000,
                      help='Imitation steps recorded, then replayed in a loop.')
  parser.add_argument('--table', action='store_true',
                      help='Print the docs table of the stored results.')
  args = parser.parse_args()
  if args.table:
    print(table())
    return
  print(json.dumps(measure(args.preset, args.max_replay_size, args.fill,
                           recorded_steps=args.recorded_steps), indent=1))


if __name__ == '__main__':
  main()
