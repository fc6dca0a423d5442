"""Golden digests of the data pipeline's output: batches and iterator states must not change by a
single byte (resumed checkpoints and every recorded result depend on them).

The digests were computed with the pipeline before its CPU optimisation. A deliberate change of the
data must update them (and say so: it invalidates comparisons with earlier runs).
"""

import hashlib
import importlib.util
import json
import os

import numpy as np
import pytest

from mmscale import config as mm_config
from mmscale.data import bpe, examples, media, packing, pipeline, procedural, tokenizers
from mmscale.data.modalities import AUDIO, IMAGE
from tests.data.conftest import make_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N_TRAIN = 30

# name: (config spec, eval stream, train batches digest, state digest, eval batches digest)
GOLDEN = {
    "nmm_t1": ("experiments/nmm.py:size=t1", "interleaved",
        "fbd5ab75ece907ebaa8d0ab94858c6fe4b027ab9f4e22bbdcf1f29898fd4467f",
        "01ec9f3a252f73bcdc3d5bf5f5429a1339ca7fe7f6fab4cd610bce018139b037",
        "4624d17418aede24705e0fa54ed446fd9843e94357b4c1fdb9c16dc30d089250"),
    "tiny": ("experiments/tiny.py", "caption",
        "b890031c83766fdad698504a9ac83cfcc9522266c62ac1005caad5563ff4c839",
        "a5050f4a24992757243f33b378758fe69a2bd3d8528143c2c5948e567e0e22f7",
        "e9074565fb0aa6267420fd35b3225c580fa499c86fca26378cf0ee43847f5c67"),
    "nmm_t1_audio": ("experiments/nmm.py:size=t1,audio=0.3", "audio",
        "e8ade3db962d5d66790604aca116c4d981e46333e4b602b513cfdd44214722cb",
        "f5a5c416c5cbd809050688201de232176388f1dac513e7803de5dd9746b80c4a",
        "36f71aa9539d7d4e51a9444cdb45d15b92751fddde68cc0fe05bf1551652f026"),
}


def load_config(spec: str):
  """Like benchmarks/common.py: `path[:arg]` -> the experiment's resolved config."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("golden_config", os.path.join(ROOT, path))
  mod = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(mod)
  return mm_config.resolve(mod.get_config(arg) if arg else mod.get_config())


def digest_batches(batches) -> str:
  h = hashlib.sha256()
  for b in batches:
    assert set(b) == set(packing.FIELDS)
    for k in packing.FIELDS:
      v = np.ascontiguousarray(b[k])
      h.update(f"{k}:{v.dtype.str}:{v.shape}".encode())
      h.update(v.tobytes())
  return h.hexdigest()


def digest_state(state) -> str:
  return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def compute(spec, eval_stream):
  config = load_config(spec)
  it = pipeline.make_train_iterator(config, 0, 1)
  train = [next(it) for _ in range(N_TRAIN)]
  state = it.get_state()
  ev = pipeline.make_eval_batches(config, eval_stream)
  return digest_batches(train), digest_state(state), digest_batches(ev)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_batches_and_state_match_golden(name):
  spec, eval_stream, *expected = GOLDEN[name]
  assert compute(spec, eval_stream) == tuple(expected)


def test_restore_mid_example_continues_with_identical_batches():
  config = load_config(GOLDEN["nmm_t1_audio"][0])
  it = pipeline.make_train_iterator(config, 0, 1)
  for _ in range(3):
    next(it)
  # Advance to a state with a carried (cut) example, the delicate case of the packer's state.
  while not it.get_state()["grain"]["offset"]:
    next(it)
  state = json.loads(json.dumps(it.get_state()))
  expected = [next(it) for _ in range(6)]
  fresh = pipeline.make_train_iterator(config, 0, 1)
  fresh.set_state(state)
  assert digest_batches([next(fresh) for _ in range(6)]) == digest_batches(expected)
  assert digest_state(fresh.get_state()) == digest_state(it.get_state())


# The original (pre-optimisation) example encoder, kept as the reference for documents the golden
# configs never produce: odd image shapes and modes, resampled audio, empty texts, BPE.
def reference_encode(parts, tok, data_cfg) -> dict:
  toks, mods, blocks, raws, patches, spans = [], [], [], [], [], []
  n = 0

  def add_text(ids, raw):
    nonlocal n
    toks.append(ids)
    mods.append(np.zeros(len(ids), np.int8))
    blocks.append(np.zeros(len(ids), np.int16))
    raws.append(raw)
    n += len(ids)

  def add_special(tid):
    add_text(np.array([tid], np.int32), np.zeros(1, np.float32))

  add_special(tokenizers.BOS)
  n_block = 0
  for kind, value in parts:
    if kind == "text":
      if value:
        add_text(*tok.encode(value))
      continue
    if kind == "image":
      img = np.asarray(value)
      p = media.image_patches(img, data_cfg.image_size, data_cfg.patch_size, data_cfg.patch_dim)
      raw, mod, begin, end = img.size, IMAGE, tokenizers.BOI, tokenizers.EOI
    else:
      wave, rate = value
      p = media.audio_patches(wave, rate, data_cfg.audio, data_cfg.patch_dim)
      raw, mod, begin, end = 2 * len(wave), AUDIO, tokenizers.BOA, tokenizers.EOA
    n_block += 1
    start = n
    add_special(begin)
    k = len(p)
    toks.append(np.zeros(k, np.int32))
    mods.append(np.full(k, mod, np.int8))
    blocks.append(np.full(k, n_block, np.int16))
    raws.append(np.full(k, raw / k, np.float32))
    patches.append(p)
    n += k
    add_special(end)
    spans.append((start, n))
  add_special(tokenizers.EOS)
  nocut = np.zeros(n + 1, bool)
  for s, e in spans:
    nocut[s + 1:e] = True
  return {
      "tokens": np.concatenate(toks), "modality": np.concatenate(mods),
      "block": np.concatenate(blocks), "raw_bytes": np.concatenate(raws),
      "media": (np.concatenate(patches) if patches
                else np.zeros((0, data_cfg.patch_dim), np.float32)),
      "breaks": (np.flatnonzero(~nocut[1:]) + 1).astype(np.int32),
  }


def odd_documents():
  rng = np.random.default_rng(7)
  wave = rng.uniform(-1, 1, 3000).astype(np.float32)
  yield [("text", "")]
  yield [("text", "héllo wörld ✓ 🙂"), ("text", ""), ("text", "x")]
  yield [("image", rng.integers(0, 256, (20, 12, 3), dtype=np.uint8))]
  yield [("image", rng.integers(0, 256, (16, 16), dtype=np.uint8)), ("text", "grey")]
  yield [("text", "rgba"), ("image", rng.integers(0, 256, (9, 30, 4), dtype=np.uint8)),
         ("image", rng.integers(0, 256, (16, 16, 1), dtype=np.uint8)), ("text", "end")]
  yield [("audio", (wave, 16000)), ("text", "resampled"), ("audio", (wave[:10], 8000))]
  for task, gen in procedural.GENERATORS.items():
    for i in range(5):
      yield gen(0, "train", i + 10 * len(task), 16)


def assert_same_example(a, b):
  assert list(a) == list(b)
  for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    assert a[k].tobytes() == b[k].tobytes(), k


@pytest.mark.parametrize("tokenizer", ["byte", "bpe"])
def test_encode_matches_reference(tokenizer, tmp_path):
  c = make_config()
  if tokenizer == "bpe":
    texts = [p[1] for i in range(200) for p in procedural.interleaved(0, "train", i, 16)
             if p[0] == "text"] + ["héllo wörld ✓ 🙂"]
    bpe.train_bpe(texts, 300, tokenizers.bpe_path(tmp_path, 300))
    c = make_config(tokenizer="bpe", bpe_vocab_size=300, data_dir=str(tmp_path))
  tok = tokenizers.get_tokenizer(c)
  for parts in odd_documents():
    assert_same_example(examples.encode(parts, tok, c.data), reference_encode(parts, tok, c.data))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32, np.float64])
@pytest.mark.parametrize("shape,patch_dim",
                         [((16, 16, 3), 48), ((16, 16, 3), 64), ((8, 8, 3), 192)])
def test_image_patches_match_reference(dtype, shape, patch_dim):
  img = np.random.default_rng(3).integers(0, 256, shape).astype(dtype)
  size = shape[0]
  g, patch = 4, size // 4
  x = img.reshape(g, patch, g, patch, 3).transpose(0, 2, 1, 3, 4).reshape(g * g, patch * patch * 3)
  expected = np.zeros((g * g, patch_dim), np.float32)
  expected[:, :x.shape[1]] = x * (2 / 255.0) - 1.0
  got = media.image_patches(img, size, patch, patch_dim)
  assert got.dtype == np.float32 and got.shape == expected.shape
  assert got.tobytes() == expected.tobytes()


def reference_audio_patches(wave, rate, a, patch_dim):
  wave = media.resample(np.asarray(wave, np.float32), rate, a.sample_rate)
  wave = wave[:int(a.max_seconds * a.sample_rate)]
  win = a.sample_rate * a.frame_ms // 1000
  hop = a.sample_rate * a.hop_ms // 1000
  n_fft = 1 << (win - 1).bit_length()
  if len(wave) < win:
    wave = np.pad(wave, (0, win - len(wave)))
  frames = np.lib.stride_tricks.sliding_window_view(wave, win)[::hop] * np.hanning(win)
  power = np.abs(np.fft.rfft(frames, n_fft)) ** 2
  logmel = np.log(power @ media.mel_filterbank(a.sample_rate, n_fft, a.n_mels) + 1e-6)
  logmel = (logmel + 5.0) / 5.0
  k = a.patch_frames
  n = -(-len(logmel) // k)
  logmel = np.pad(logmel, ((0, n * k - len(logmel)), (0, 0)))
  out = np.zeros((n, patch_dim), np.float32)
  out[:, :k * a.n_mels] = logmel.reshape(n, k * a.n_mels)
  return out


@pytest.mark.parametrize("n,rate", [(10, 8000), (256, 8000), (257, 8000), (5000, 8000),
                                    (40_000, 8000), (3000, 16000), (1234, 11025)])
def test_audio_patches_match_reference(n, rate):
  a = make_config().data.audio
  wave = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
  got = media.audio_patches(wave, rate, a, 64)
  want = reference_audio_patches(wave, rate, a, 64)
  assert got.dtype == want.dtype and got.shape == want.shape
  assert got.tobytes() == want.tobytes()
  strided = wave[::-1].copy()[::-1]  # Same samples through a negative-stride view.
  assert media.audio_patches(strided, rate, a, 64).tobytes() == want.tobytes()
