"""Media to patches: images resized and cut into p x p RGB patches; audio as log-mel spectrogram
patches (patch_frames consecutive frames x n_mels). Rows are zero-padded to config.data.patch_dim.
Raw byte counts (for bits per raw byte) are those of the decoded media at its stored resolution:
H*W*C bytes for an image, 2 bytes per 16-bit mono sample for audio."""

import functools
import io

import numpy as np


class Pixels:
  """An image already decoded to the model's size (or cropped), with the raw bytes of the stored
  image: bits per raw byte count the stored media, not the resized or cropped copy."""

  __slots__ = ("array", "raw_bytes")

  def __init__(self, array: np.ndarray, raw_bytes: int):
    self.array, self.raw_bytes = array, raw_bytes

  def __array__(self, dtype=None, copy=None):  # np.asarray(pixels) is its pixels.
    del copy
    return self.array if dtype is None else self.array.astype(dtype)


def decode_image(data: bytes, size: int | None = None):
  """Image bytes -> uint8 [H, W] (grayscale) or [H, W, 3] at the stored size; with `size`, a
  Pixels of [size, size, 3], resized as image_patches resizes (same pixels) but inside PIL: the
  stored-size array is never built (converting it cost as much as decoding), and a JPEG is
  decoded at the smallest DCT scale that still covers `size` (Image.draft)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(io.BytesIO(data)) as im:
    if size is None:
      return np.asarray(im.convert("RGB") if im.mode not in ("RGB", "L") else im)
    w, h = im.size
    raw = w * h * (1 if im.mode == "L" else 3)
    if im.format == "JPEG":
      im.draft("RGB", (size, size))
    im = im.convert("RGB")
    if im.size != (size, size):
      im = im.resize((size, size), Image.BILINEAR)
    return Pixels(np.asarray(im), raw)


# uint8 pixel -> its float32 value in [-1, 1] (computed as image_patches computes other dtypes).
_UINT8_TO_UNIT = (np.arange(256, dtype=np.uint8) * (2 / 255.0) - 1.0).astype(np.float32)


def image_patches(img: np.ndarray, image_size: int, patch: int, patch_dim: int) -> np.ndarray:
  """uint8 [H,W] or [H,W,C] -> float32 [(S/p)^2, patch_dim] in [-1, 1], row-major patch order."""
  if img.ndim == 2:
    img = img[:, :, None]
  if img.shape[2] == 1:
    img = np.repeat(img, 3, axis=2)
  elif img.shape[2] == 4:
    img = img[:, :, :3]
  if img.shape[0] != image_size or img.shape[1] != image_size:
    from PIL import Image  # pylint: disable=g-import-not-at-top
    img = np.asarray(Image.fromarray(np.ascontiguousarray(img, np.uint8)).resize(
        (image_size, image_size), Image.BILINEAR))
  g = image_size // patch
  uint8 = img.dtype == np.uint8
  if uint8:  # Table lookup: the float32 values of the arithmetic below, one temporary fewer.
    img = _UINT8_TO_UNIT[img]
  x = img.reshape(g, patch, g, patch, 3).transpose(0, 2, 1, 3, 4).reshape(g * g, patch * patch * 3)
  if not uint8:
    x = x * (2 / 255.0) - 1.0
  elif x.shape[1] == patch_dim:
    return x  # Already a fresh float32 array of the output's shape.
  out = np.zeros((g * g, patch_dim), np.float32)
  out[:, :x.shape[1]] = x
  return out


@functools.lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
  """Triangular filters [n_fft//2+1, n_mels] on the HTK mel scale."""
  mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
  hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)
  edges = hz(np.linspace(mel(0.0), mel(sample_rate / 2), n_mels + 2))
  freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
  lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
  fb = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
  return fb.T.astype(np.float32)


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
  if rate == target:
    return wave
  from scipy import signal  # pylint: disable=g-import-not-at-top
  g = np.gcd(rate, target)
  return signal.resample_poly(wave, target // g, rate // g).astype(np.float32)


def audio_patches(wave: np.ndarray, rate: int, a, patch_dim: int) -> np.ndarray:
  """float waveform in [-1, 1] -> float32 [n_patches, patch_dim] of log-mel patches.

  `a` is config.data.audio. Clips are cut to a.max_seconds so one clip always fits a sequence.
  """
  sample_rate, k, n_mels = a.sample_rate, a.patch_frames, a.n_mels  # ConfigDict reads are slow.
  wave = resample(np.asarray(wave, np.float32), rate, sample_rate)
  wave = wave[:int(a.max_seconds * sample_rate)]
  win = sample_rate * a.frame_ms // 1000
  hop = sample_rate * a.hop_ms // 1000
  n_fft = 1 << (win - 1).bit_length()
  if len(wave) < win:
    wave = np.pad(wave, (0, win - len(wave)))
  # = sliding_window_view(wave, win)[::hop], without its per-call overhead.
  step = wave.strides[0]
  frames = np.lib.stride_tricks.as_strided(
      wave, ((len(wave) - win) // hop + 1, win), (hop * step, step), writeable=False)
  frames = frames * _hanning(win)
  power = np.abs(np.fft.rfft(frames, n_fft)) ** 2
  logmel = np.log(power @ mel_filterbank(sample_rate, n_fft, n_mels) + 1e-6)
  # Fixed affine map to roughly unit scale (per-clip normalisation would hide loudness).
  logmel = (logmel + 5.0) / 5.0
  n = -(-len(logmel) // k)
  logmel = np.pad(logmel, ((0, n * k - len(logmel)), (0, 0)))
  out = np.zeros((n, patch_dim), np.float32)
  out[:, :k * n_mels] = logmel.reshape(n, k * n_mels)
  return out


@functools.lru_cache(maxsize=8)
def _hanning(win: int) -> np.ndarray:
  w = np.hanning(win)
  w.flags.writeable = False
  return w


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
  """WAV bytes (PCM 8/16/32-bit or float) -> (mono float32 waveform, sample rate)."""
  from scipy.io import wavfile  # pylint: disable=g-import-not-at-top
  rate, x = wavfile.read(io.BytesIO(data))
  if x.dtype == np.uint8:
    x = (x.astype(np.float32) - 128) / 128
  elif np.issubdtype(x.dtype, np.integer):
    x = x.astype(np.float32) / np.iinfo(x.dtype).max
  x = np.asarray(x, np.float32)
  return (x.mean(axis=1) if x.ndim == 2 else x), int(rate)


def encode_wav(wave: np.ndarray, rate: int) -> bytes:
  from scipy.io import wavfile  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  wavfile.write(buf, rate, (np.clip(wave, -1, 1) * 32767).astype(np.int16))
  return buf.getvalue()


def encode_png(img: np.ndarray) -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  Image.fromarray(np.asarray(img, np.uint8)).save(buf, format="PNG")
  return buf.getvalue()
