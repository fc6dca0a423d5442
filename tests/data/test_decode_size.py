"""Images of the user-data sources are decoded straight to the model's size (no stored-size array):
the same examples as decoding at the stored size and resizing (PNG: byte for byte; a JPEG is
decoded at a reduced DCT scale, close to it), and the raw bytes stay those of the stored image."""

import numpy as np
import pytest

from mmscale.data import examples, media, parts, pipeline, tokenizers
from mmscale.data import config as data_config
from tests.data import user_shards
from tests.data.conftest import make_config


def _images(shipped):
  """Tux Paint stamps (RGB, wider than tall or taller than wide) and Fashion-MNIST (grayscale)."""
  out = []
  for name in ("tuxpaint", "fashion_mnist"):
    out += [np.asarray(v).squeeze() for _, ps in shipped[name]["train"][:12] for k, v in ps if k == "image"]
  return out


def _encode(blob, d, size):
  return examples.encode([parts.image_part(blob, "x", size), ("text", "a caption")],
                         tokenizers.ByteTokenizer(), d)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_decoded_to_size_is_the_resized_stored_image(shipped, fmt):
  d = make_config().data
  for img in _images(shipped):
    blob = media.encode_png(img) if fmt == "png" else user_shards.jpeg(img)
    full, sized = _encode(blob, d, None), _encode(blob, d, d.image_size)
    for k in ("tokens", "modality", "block", "raw_bytes", "breaks"):
      np.testing.assert_array_equal(full[k], sized[k], err_msg=k)
    # Raw bytes: the stored image's H*W*C, spread over its patches.
    stored = media.decode_image(blob)
    assert full["raw_bytes"][full["modality"] == 1].sum() == pytest.approx(stored.size)
    if fmt == "png" or max(img.shape[:2]) < 2 * d.image_size:  # No DCT reduction possible.
      np.testing.assert_array_equal(full["media"], sized["media"])
    else:  # Pixels in [-1, 1]: the reduced-scale decode differs from the full one at edges only.
      assert np.mean(np.abs(full["media"] - sized["media"])) < 0.05


def test_training_with_augmentation_still_crops_the_stored_image(tmp_path, shipped):
  """Crops are drawn on the stored image, so an augmented stream's documents are not pre-resized."""
  user_shards.write_webdataset(tmp_path / "train-000.tar", user_shards.caption_pairs(shipped["tuxpaint"]["train"]))
  user_shards.write_webdataset(tmp_path / "validation-000.tar",
                               user_shards.caption_pairs(shipped["tuxpaint"]["validation"]))
  c = make_config()
  c.data.streams = {"w": data_config.stream("webdataset", path=str(tmp_path))}
  plain = next(pipeline.make_train_iterator(c))
  c.data.augment.random_resized_crop = True
  crop = next(pipeline.make_train_iterator(c))
  assert plain["patches"].shape == crop["patches"].shape
  assert not np.array_equal(plain["patches"], crop["patches"])
  # The positions (and so the raw bytes of the stored images) do not depend on the crops.
  np.testing.assert_array_equal(plain["raw_bytes"], crop["raw_bytes"])
