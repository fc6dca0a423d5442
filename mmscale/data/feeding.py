"""How the streams feed one global batch: their example rates (data.mix_by) and how processes
share the batch (data.host_split).

Two registries whose keys are the allowed names: the pipeline dispatches through them and
config.data's validator checks against them. They live here, not in pipeline.py, because the
pipeline imports the data config.
"""

import numpy as np


def _by_examples(weights, mean_lengths):
  del mean_lengths  # Weights are example rates already.
  return weights


def _by_tokens(weights, mean_lengths):
  # Equal token shares need example rates inversely proportional to length.
  return weights / np.array(mean_lengths())


# data.mix_by -> (stream weights, a function returning their mean example lengths, called only
# when needed) -> example rates.
MIX_BY = {"examples": _by_examples, "tokens": _by_tokens}


def _by_rows(process_index, process_count, batch_size, rows):
  del process_count
  return (0, 1), batch_size, slice(process_index * rows, (process_index + 1) * rows)


def _by_example_slices(process_index, process_count, batch_size, rows):
  del batch_size
  return (process_index, process_count), rows, slice(None)


# data.host_split -> (process index, process count, global batch rows, this process's rows) ->
# (example slice (start, step), rows packed per batch, rows this process keeps).
HOST_SPLITS = {"rows": _by_rows, "examples": _by_example_slices}
