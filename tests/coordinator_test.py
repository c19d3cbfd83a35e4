"""The coordinator ends a run once every learner reached the step limit."""

import json
import threading

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
