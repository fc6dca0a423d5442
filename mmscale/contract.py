"""The disk contract between stages: what one stage writes and the next one reads.

Data flows config -> trainer -> records -> collect -> fit -> report, and each stage reads only what
the previous one wrote. Everything both sides of a join must agree on lives here, once: file names,
run statuses and their exit codes, the modalities, the record kinds, the law's formula and the MoE
specialization score. Light on purpose (numpy only): every stage, the CLI's --help included, may
import it.
"""

import numpy as np

# -- a run directory: <root>/<run_id>/ ------------------------------------------------------------
CONFIG_FILE = "config.json"  # The resolved config, as the run was started.
RECORDS_FILE = "records.jsonl"  # One JSON object per line, appended atomically.
SUMMARY_FILE = "summary.json"  # Status, final and initial values, parameter counts.
CHECKPOINTS_DIR = "checkpoints"  # Orbax: params, optimizer state, step, data-iterator state.

# -- what a run ends as, and what its process exits with ------------------------------------------
EXIT_DONE = 0
EXIT_FAILED = 1  # An internal error: the traceback is in the run's log.
EXIT_USER_ERROR = 2  # Bad input: one line on stderr, nothing written.
EXIT_DIVERGED = 3  # A non-finite loss or gradient norm stopped the run; retrying will not help.
EXIT_PREEMPTED = 143  # 128 + SIGTERM: saved and stopped on a signal; a scheduler requeues it.

# A run's summary.json "status" as the trainer writes it.
DONE, FAILED, DIVERGED, PREEMPTED = "done", "failed", "diverged", "preempted"
STATUS_OF_EXIT = {EXIT_DONE: DONE, EXIT_FAILED: FAILED, EXIT_DIVERGED: DIVERGED,
                  EXIT_PREEMPTED: PREEMPTED}
EXIT_OF_STATUS = {status: code for code, status in STATUS_OF_EXIT.items()}
FINISHED = (DONE, DIVERGED)  # Never run again: a diverged run would diverge again the same way.

# What a sweep's registry (mmscale/sweep/registry.py status) derives on top of those, from claims,
# the run's spec and its trunk; `mmscale status`, the workers and the launchers read them.
RUNNING = "running"  # A live claim holds it (a worker is training it now).
PENDING = "pending"  # Not started, or stopped without a status: a worker will start or resume it.
BLOCKED = "blocked"  # A branch whose trunk diverged before the branch's checkpoint: it never can run.
# Written into summary.json by the registry (not the trainer) when a finished run's spec grew
# (more steps): it is no longer finished, and its summary still holds the old end.
EXTENDED = "extended"
SWEEP_STATUSES = (RUNNING, PENDING, BLOCKED, EXTENDED)

# -- data -----------------------------------------------------------------------------------------
MODALITIES = ("text", "image", "audio")  # Position kinds of a packed sequence, in id order.
MEDIA_MODALITIES = MODALITIES[1:]

# -- records.jsonl --------------------------------------------------------------------------------
RECORD_KINDS = ("init_eval", "eval", "train")  # init_eval: before step 1; eval: after `step`.


# -- the parametric law (Hoffmann et al. 2022, approach 3) ----------------------------------------
LAW_FORMULA = "L(N, D) = E + A / N^alpha + B / D^beta"


def chinchilla_loss(n, d, e, a, b, alpha, beta):
  """L(N, D) of LAW_FORMULA, elementwise over numpy arrays (N parameters, D tokens)."""
  n, d = np.asarray(n, np.float64), np.asarray(d, np.float64)
  return e + a / n**alpha + b / d**beta


# -- MoE routing ----------------------------------------------------------------------------------
SPECIALIZATION_FORMULA = "mean over experts of 1 - H(p), p an expert's share of text/image tokens"


def specialization_score(counts, columns=(0, 1)) -> float:
  """Shukor et al. 2025 §4.4: mean over experts of 1 - H(p), p an expert's text/image share.

  counts [E, n_modalities]; H in bits (binary entropy for two columns; log base = number of
  columns otherwise, so the score stays in [0, 1]): 0 when every expert sees text and image in
  equal parts, 1 when each expert sees one modality only. Experts that saw none of these
  modalities are left out of the mean (NaN if none saw any).
  """
  c = np.asarray(counts, np.float64)[:, list(columns)]
  tot = c.sum(axis=1)
  seen = tot > 0
  if not seen.any():
    return float("nan")
  p = c[seen] / tot[seen, None]
  with np.errstate(divide="ignore", invalid="ignore"):
    h = -np.sum(np.where(p > 0, p * np.log2(p), 0.0), axis=1) / np.log2(len(columns))
  return float(np.mean(1.0 - h))


def routing_record(counts) -> dict:
  """The eval records' "routing" field from [n_moe_layers, E, n_modalities] token counts."""
  counts = np.asarray(counts, np.float64)
  return {"counts": counts.tolist(), "modalities": list(MODALITIES),
          "specialization": [specialization_score(c) for c in counts]}
