"""Random-resized crop and flip: inside the image, within the configured scale and ratio, a pure
function of (seed, stream, position), on for training only, resumable."""

import numpy as np
import pytest

from mmscale.data import augment, pipeline
from mmscale.errors import ConfigError
from mmscale.data import config as data_config
from tests.data.conftest import make_config


def shukor(c):
  c.data.augment.random_resized_crop = True
  c.data.augment.scale = (0.4, 1.0)
  c.data.augment.flip = 0.5
  return c


def test_crop_box_is_inside_and_within_scale_and_ratio():
  rng = np.random.default_rng(0)
  for h, w in ((64, 55), (28, 28), (30, 200)):
    for _ in range(300):
      top, left, ch, cw = augment.crop_box(rng, h, w, (0.4, 1.0), (3 / 4, 4 / 3))
      assert 0 <= top and top + ch <= h and 0 <= left and left + cw <= w and ch > 0 and cw > 0
      if (h, w) != (30, 200):  # The 30x200 strip may fall back to the central crop.
        assert 0.4 * h * w * 0.85 <= ch * cw <= h * w  # Area share (rounding to whole pixels).
        assert 3 / 4 * 0.85 <= cw / ch <= 4 / 3 * 1.15
  # The fallback is the central crop of the closest allowed ratio.
  assert augment.crop_box(np.random.default_rng(0), 10, 100, (1.0, 1.0), (1.0, 1.0)) == (0, 45, 10, 10)


def test_augmenter_is_a_function_of_seed_stream_and_position():
  a = shukor(make_config()).data.augment
  img = np.arange(40 * 30 * 3, dtype=np.uint8).reshape(40, 30, 3)
  parts = [("text", "t"), ("image", img), ("image", img)]
  f = augment.Augmenter(a, 0, "wds")
  one = f(parts, 7)
  again = augment.Augmenter(a, 0, "wds")(parts, 7)
  for (k, x), (_, y) in zip(one, again):
    assert k == "text" or np.array_equal(x, y)
  assert one[0] == ("text", "t")
  assert not np.array_equal(one[1][1], one[2][1]) or one[1][1].shape != img.shape  # Per image.
  assert not np.array_equal(f(parts, 8)[1][1], one[1][1])
  assert not np.array_equal(augment.Augmenter(a, 1, "wds")(parts, 7)[1][1], one[1][1])
  flips = sum(augment.Augmenter(a, 0, "s").image(img[:1, :2], p, 0)[0, 0, 0] != img[0, 0, 0]
              for p in range(2000))
  assert abs(flips - 1000) < 4 * np.sqrt(500)  # flip = 0.5.
  a.random_resized_crop, a.flip = False, 1.0
  np.testing.assert_array_equal(augment.Augmenter(a, 0, "s")(parts, 3)[1][1], img[:, ::-1])


def test_training_batches_augmented_deterministically_and_resume_exactly():
  c = shukor(make_config())
  plain = next(pipeline.make_train_iterator(make_config()))
  it = pipeline.make_train_iterator(c)
  first = [next(it) for _ in range(2)]
  state = it.get_state()
  rest = [next(it) for _ in range(2)]
  again = next(pipeline.make_train_iterator(c))
  np.testing.assert_array_equal(again["patches"], first[0]["patches"])
  np.testing.assert_array_equal(plain["tokens"], first[0]["tokens"])  # Same documents...
  assert not np.array_equal(plain["patches"], first[0]["patches"])  # ...other pixels.
  r = pipeline.make_train_iterator(c)
  r.set_state(state)
  for x, y in zip(rest, [next(r) for _ in range(2)]):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_validation_is_never_augmented():
  a = pipeline.make_eval_batches(shukor(make_config()), "caption", num_batches=1)[0]
  b = pipeline.make_eval_batches(make_config(), "caption", num_batches=1)[0]
  np.testing.assert_array_equal(a["patches"], b["patches"])


@pytest.mark.parametrize("key,value,message", [
    ("scale", (0.5, 1.5), "config.data.augment.scale=(0.5, 1.5): must lie in (0, 1]"),
    ("scale", (0.9, 0.4), "must be two numbers (lo, hi) with 0 < lo <= hi"),
    ("flip", 2.0, "config.data.augment.flip=2.0: must be a probability in [0, 1]"),
])
def test_bad_augment_values(key, value, message):
  c = make_config()
  c.data.augment[key] = value
  with pytest.raises(ConfigError) as e:
    data_config.validate(c)
  assert message in str(e.value)
