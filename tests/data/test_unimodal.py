"""Uni-modal streams (procedural image and tones, or a user stream with only an image field): their
only text positions are the markers, which carry no raw bytes, so the mixed-modal laws see the
runs as image-only or audio-only."""

import numpy as np
import pytest

from mmscale.data import config as data_config
from mmscale.data import procedural, stats
from mmscale.data.modalities import AUDIO, IMAGE
from tests.data.conftest import make_config


@pytest.mark.parametrize("task,modality", [("image", IMAGE), ("tones", AUDIO)])
def test_unimodal_procedural_streams_have_no_text_bytes(task, modality):
  c = make_config()
  c.data.streams = {task: data_config.stream("procedural", task)}
  s = stats.measure(c, 16)
  other = "audio" if modality == IMAGE else "image"
  name = "image" if modality == IMAGE else "audio"
  assert s["raw_bytes"]["text"] == 0 and s["raw_bytes"][other] == 0 and s["raw_bytes"][name] > 0
  # Each document: BOS, begin marker, patches, end marker, EOS -> 4 text positions per item.
  assert s["modality_tokens"]["text"] > 0
  parts = procedural.GENERATORS[task](0, "train", 3, 16)
  assert [k for k, _ in parts] == [name]


def test_unimodal_and_bimodal_procedural_content_differs():
  img = procedural.image(0, "train", 0, 16)[0][1]
  cap = procedural.caption(0, "train", 0, 16)[0][1]
  assert img.shape == cap.shape == (16, 16, 3) and not np.array_equal(img, cap)


def test_uni_modal_stream_needs_its_modality():
  c = make_config(modalities=("text", "image"))
  c.data.streams = {"t": data_config.stream("procedural", "tones")}
  with pytest.raises(Exception, match="produces audio, which is not in data.modalities"):
    data_config.validate(c)


def test_mixed_modal_laws_take_image_only_runs_by_their_bytes():
  from mmscale.laws import mixed_modal
  # Three runs as `mmscale collect` writes them: image-only (marker positions count as text
  # tokens, with zero text bytes), text-only, and bimodal.
  table = {"tokens_text": np.array([400.0, 5e4, 3e4]), "tokens_image": np.array([6400.0, 0, 2e4]),
           "bytes_text": np.array([0.0, 5e4, 3e4]), "bytes_image": np.array([3e4, 0, 9e4])}
  assert mixed_modal.modality_rows(table, ["image"], ["text"]).tolist() == [True, False, False]
  assert mixed_modal.modality_rows(table, ["text"], ["image"]).tolist() == [False, True, False]
  assert mixed_modal.modality_rows(table, ["text", "image"]).tolist() == [False, False, True]
  del table["bytes_text"], table["bytes_image"]  # A hand-made table of tokens only: as before.
  assert mixed_modal.modality_rows(table, ["text", "image"]).tolist() == [True, False, True]


def test_audio_only_webdataset_stream(tmp_path):
  """KEY.wav members alone: an audio-only user stream, clips as log-mel patches."""
  import io
  import tarfile
  from mmscale.data import media, pipeline
  for split, n in (("train", 12), ("validation", 3)):
    with tarfile.open(tmp_path / f"{split}-000.tar", "w") as tf:
      for i in range(n):
        wave, rate = procedural.tones(0, split, i, 16)[0][1]
        data = media.encode_wav(wave, rate)
        info = tarfile.TarInfo(f"clip{i:03d}.wav")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
  c = make_config()
  c.data.streams = {"speech": data_config.stream("webdataset", path=str(tmp_path), fields="audio=wav")}
  b = next(pipeline.make_train_iterator(c))
  valid = b["segment_ids"] > 0
  assert (b["modality"][valid] == AUDIO).sum() > 0 and not (b["modality"][valid] == IMAGE).any()
  text = valid & (b["modality"] == 0)
  assert (b["raw_bytes"][text] == 0).all() and (b["raw_bytes"][b["modality"] == AUDIO] > 0).all()
