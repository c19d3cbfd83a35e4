"""Markdown table of launch/diagnose.py outputs (docs/fidelity.md, issue 32).

Not project code: kept beside the JSONs it reads.

    python docs/results/diagnostics/probe_table.py docs/results/diagnostics/*.json
"""
import dataclasses
import json
import os
import sys

from acme_metamimic import config as config_lib

# docs/results: file names are given relative to it.
RESULTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _paper_value(name):
  """`MetaMimicConfig`'s default of a field (the paper's value)."""
  field = {f.name: f for f in dataclasses.fields(config_lib.MetaMimicConfig)}[
      name]
  return field.default


def _cell(value, digits=3):
  return '-' if value is None else f'{value:.{digits}g}'


def row(path):
  with open(path) as f:
    result = json.load(f)
  source = result['source']
  fit = source.get('fitted_to_one_step_reward')
  inverse = source.get('fitted_by_inverse_dynamics')
  if inverse:
    held_out = result['inverse_dynamics_imitation']
    what = (f"fresh, policy fitted by inverse dynamics ({inverse['steps']:,} "
            f"steps, {inverse['transitions']:,} transitions in episodes of "
            f"{inverse['mean_episode_length']:.1f} steps; last loss "
            f"{inverse['last_loss']:.3f}), then held out "
            f"{held_out['imitation_reward_per_step']:.2f} eq. 2 / step, "
            f"{held_out['task_return_pct_of_demo']:.1f} % task reward")
  elif source['kind'] == 'checkpoint':
    what = f"checkpoint, {source['learner_steps']:,} learner steps"
  elif fit:
    what = (f"fresh, fitted to the one-step reward ({fit['steps']:,} steps, "
            f"{fit['transitions']:,} transitions; last loss "
            f"{fit['last_loss']:.2f})")
  else:
    what = 'fresh (untrained)'
  # The --config overrides of the preset's config as it was then; from a
  # run.json that records every network field's value (since session 18),
  # those that differ from the paper's.
  overrides = result.get('network_overrides') or {}
  if set(config_lib.NETWORK_FIELDS) <= set(overrides):
    overrides = {key: value for key, value in overrides.items()
                 if value != _paper_value(key)}
  ranking = result['critic_ranking']
  versus = result['policy_vs_tracker']
  exploration = result['exploration']
  cosine = result['gradient_cosine']
  name = os.path.relpath(os.path.abspath(path), RESULTS)
  # Files from before session 31 hold no gradient of the return: '-'.
  truth = (f"{_cell(ranking['reward_vs_return'])} / "
           f"{_cell(cosine.get('reward_vs_return_cosine'))}")
  return (f"| {name} | {what} | "
          f"{', '.join(f'{k}={v}' for k, v in sorted(overrides.items())) or '-'}"
          f" | {_cell(ranking['q_vs_reward'])} | "
          f"{_cell(ranking['q_vs_return'])} "
          f"({result['settings']['horizon']}) | "
          f"{_cell(cosine['cosine'])} | "
          f"{_cell(cosine.get('return_cosine'))} | {truth} | "
          f"{_cell(versus['q_prefers_policy'])} | "
          f"{_cell(exploration['policy']['mean_length'])} / "
          f"{_cell(exploration['tracker']['mean_length'])} |")


def main(paths):
  print('| file | networks | overrides | rank corr. Q vs one-step eq. 2 | '
        'vs H-step return (H) | cosine dQ/da, one-step | vs return | '
        'truth, one-step vs return: rank / cosine | '
        'Q prefers policy over tracker | '
        'noisy episode length, policy / tracker |')
  print('|---|---|---|---|---|---|---|---|---|---|')
  for path in paths:
    print(row(path))


if __name__ == '__main__':
  main(sys.argv[1:])
