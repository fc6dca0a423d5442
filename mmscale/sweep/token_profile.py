"""What a run's batches are made of: the shares of non-pad and media positions.

Late fusion's records count C = 6(N_v*D_v + N*D), with D the non-pad positions and D_v the media
ones. How many of a batch's positions are media depends on the mixture and the packing, so the
grid measures it on the run's own first batches (data order is a pure function of the seed, so
these are the batches the run will train on) instead of assuming a share.
"""

import functools
import json
import math

import ml_collections
import numpy as np

from mmscale.data.modalities import MODALITY_ID
from mmscale.errors import ConfigError, UserError

MIN_POSITIONS = 200_000  # Enough for the media share to be within ~0.5 % of the run's.
MAX_BATCHES = 256


class NeedsData(UserError):
  """The plan of a study with an encoder fusion reads its prepared data, and it is not there."""


def measure(config) -> dict:
  """{"tokens": non-pad share of the positions, "media": share of positions of the model's media
  modalities} over the first batches of the run's training data."""
  key = json.dumps({"seed": config.seed, "data": config.data.to_dict(),
                    "media": list(config.model.modalities)}, sort_keys=True, default=str)
  try:
    return dict(_measure(key))
  except ConfigError as e:  # Data not prepared: say why a plan (even --dry-run) needs it.
    raise NeedsData(f"{e} (the plan reads the data: with model.fusion={config.model.fusion!r} a "
                    "run's steps per budget count its encoders' FLOPs on the share of media "
                    "positions in its own batches, C = 6(N_v*D_v + N*D))") from None


@functools.lru_cache(maxsize=64)
def _measure(key: str) -> tuple:
  from mmscale.data import pipeline  # Grain and the sources load only when a grid needs them.

  k = json.loads(key)
  config = ml_collections.ConfigDict({"seed": k["seed"], "data": k["data"]})
  for name, value in config.data.items():  # JSON has no tuples; configs use them for sequences.
    if isinstance(value, list):
      config.data[name] = tuple(value)
  config.data.prefetch = 0  # Same batches, no background thread to outlive the measurement.
  positions = int(config.data.batch_size) * int(config.data.seq_len)
  batches = min(MAX_BATCHES, max(8, math.ceil(MIN_POSITIONS / positions)))
  media_ids = [MODALITY_ID[m] for m in k["media"]]
  it = pipeline.make_train_iterator(config)
  real = media = total = 0
  for _ in range(batches):
    b = next(it)
    here = np.asarray(b["segment_ids"]) > 0
    real += int(here.sum())
    media += int((here & np.isin(np.asarray(b["modality"]), media_ids)).sum())
    total += here.size
  return (("tokens", real / total), ("media", media / total))
