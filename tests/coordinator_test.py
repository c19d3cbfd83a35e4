"""The coordinator ends a run once every learner reached the step limit."""

import json
import os
import re
import threading
import time

from acme.utils import counting
import pytest
import reverb

from acme_metamimic import agent_distributed


@pytest.mark.parametrize('steps_keys', [
    ('imitation_learner_steps', 'task_learner_steps'),  # MetaMimic.
    ('task_learner_steps',)])  # The d4pg* baselines.
def test_coordinator_waits_for_every_learner(tmp_path, steps_keys):
  server = reverb.Server(
      [reverb.Table.queue(name, 10) for name in ('imitation', 'task')],
      checkpointer=reverb.checkpointers.DefaultCheckpointer(
          str(tmp_path / 'replay')))
  counter = counting.Counter()
  coordinator = agent_distributed.Coordinator(
      counter, reverb.Client(f'localhost:{server.port}'), str(tmp_path),
      max_learner_steps=20, max_seconds=None, poll_seconds=0.02,
      steps_keys=steps_keys)
  run = threading.Thread(target=coordinator.run, daemon=True)
  # The learner that steps first (here the other one) does not end the run:
  # which learner that is depends on the machine's load.
  first, *others = reversed(steps_keys)
  counter.increment(**{first: 25})
  run.start()
  run.join(1.)
  assert run.is_alive() == bool(others)
  counter.increment(**{key: 20 for key in others})
  run.join(30.)
  assert not run.is_alive()
  with open(tmp_path / agent_distributed.SUMMARY_FILE) as f:
    summary = json.load(f)
  assert summary['steps_keys'] == list(steps_keys)
  assert summary['counts'] == {first: 25, **{key: 20 for key in others}}
  assert summary['table_sizes'] == {'imitation': 0, 'task': 0}
  server.stop()


def test_progress_line_marks_a_held_out_return_that_stopped_coming(
    tmp_path, capsys):
  # Session 25's evaluator died half-way; every later progress line still
  # showed its last held-out return as if it were current.
  server = reverb.Server(
      [reverb.Table.queue('task', 10)],
      checkpointer=reverb.checkpointers.DefaultCheckpointer(
          str(tmp_path / 'replay')))
  log = tmp_path / 'logs' / 'evaluator_imitation_validation' / 'logs.csv'
  log.parent.mkdir(parents=True)
  log.write_text('imitation_return,steps\n57.3,400\n')
  coordinator = agent_distributed.Coordinator(
      counting.Counter(), reverb.Client(f'localhost:{server.port}'),
      str(tmp_path), max_learner_steps=None, max_seconds=0.,
      stale_log_seconds=60.)
  coordinator.run()
  fresh = capsys.readouterr().out
  assert 'held-out imitation return 57.3' in fresh
  assert 'ago' not in fresh
  old = time.time() - 600.
  os.utime(log, (old, old))
  coordinator.run()
  stale = capsys.readouterr().out
  assert re.search(r'held-out imitation return 57\.3 \(logged 6\d\ds ago',
                   stale), stale
  server.stop()
