"""Published scaling-law coefficients to set beside a fit, copied from
/work/shared/benchmarks/EXPECTED.md (which cites each paper), with the study each one belongs to.

`match` says which fitted study a row compares with: a dict of required column values (a fitted
study matches if its runs share them); an empty dict is the text-only reference, shown for every
fit. Keys: E, A, B, alpha, beta, a (N_opt ∝ C^a), b (D_opt ∝ C^b), c (L ∝ C^c), d (D_opt ∝ N^d).
"""

SOURCE = "shared/benchmarks/EXPECTED.md"

PUBLISHED = [
    {"name": "Chinchilla (Hoffmann et al. 2022), text", "match": {},
     "values": {"E": 1.693, "alpha": 0.339, "beta": 0.285, "a": 0.46, "b": 0.54},
     "cite": "Shukor et al. 2025, comparison table"},
    {"name": "Chinchilla refit (Besiroglu et al. 2024), text, 240 points", "match": {},
     "values": {"E": 1.8172, "A": 477.8, "B": 2143.0, "alpha": 0.3473, "beta": 0.3672, "a": 0.514},
     "intervals": {"alpha": (0.317, 0.373), "beta": (0.331, 0.415), "E": (1.769, 1.871)},
     "cite": "Epoch AI replication, Approach 3; 95 % bootstrap intervals"},
    {"name": "Early fusion, AVG (Shukor et al. 2025)", "match": {"fusion": "early", "ffn": "dense"},
     "values": {"E": 1.904, "alpha": 0.301, "beta": 0.335, "a": 0.526, "b": 0.473, "c": -0.0492,
                "d": 0.899},
     "se": {"alpha": 0.10, "beta": 0.029, "a": 0.088, "b": 0.058},
     "cite": "Native multimodal scaling, Table; bootstrap std (100 resamples)"},
    {"name": "Late fusion, AVG (Shukor et al. 2025)", "match": {"fusion": "late"},
     "values": {"E": 1.891, "alpha": 0.290, "beta": 0.338, "a": 0.636, "b": 0.462, "c": -0.0494,
                "d": 0.673},
     "cite": "Native multimodal scaling, Table"},
    {"name": "Sparse early fusion, 8 experts top-1, AVG (Shukor et al. 2025)",
     "match": {"fusion": "early", "ffn": "moe"},
     "values": {"E": 2.158, "alpha": 0.710, "beta": 0.372, "a": 0.361, "b": 0.656, "c": -0.047,
                "d": 1.797},
     "cite": "Native multimodal scaling, Table"},
    {"name": "Mixture 45-45-10 (Shukor et al. 2025)", "match": {"mixture": "45-45-10"},
     "values": {"a": 0.527, "b": 0.474}, "cite": "image-caption/interleaved/text %"},
    {"name": "Mixture 40-20-40 (Shukor et al. 2025)", "match": {"mixture": "40-20-40"},
     "values": {"a": 0.518, "b": 0.486}, "cite": "image-caption/interleaved/text %"},
    {"name": "Mixture 30-30-40 (Shukor et al. 2025)", "match": {"mixture": "30-30-40"},
     "values": {"a": 0.572, "b": 0.428}, "cite": "image-caption/interleaved/text %"},
    {"name": "Mixture 20-40-40 (Shukor et al. 2025)", "match": {"mixture": "20-40-40"},
     "values": {"a": 0.582, "b": 0.423}, "cite": "image-caption/interleaved/text %"},
]


# A study without the column is taken to be the common case (Shukor et al.'s default model).
DEFAULTS = {"fusion": "early", "ffn": "dense"}


def _norm(value: str) -> str:
  # "45_45_10", "45/45/10" and "45-45-10" name the same mixture.
  return "".join(ch if ch.isalnum() or ch == "." else "-" for ch in str(value).lower())


def matching(study_values: dict) -> list:
  """Published rows whose `match` holds for a study's constant column values (str -> str)."""
  out = []
  for row in PUBLISHED:
    if all(_norm(study_values.get(k, DEFAULTS.get(k))) == _norm(v) for k, v in row["match"].items()):
      out.append(row)
  return out
