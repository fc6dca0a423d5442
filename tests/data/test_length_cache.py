"""The mix_by=tokens length estimate is computed once per data, and again whenever the data changes."""

import json
import os

from mmscale.data import length_cache


def _compute(counter, values):
  def compute():
    counter.append(1)
    return values
  return compute


def test_disk_cache_returns_the_exact_floats_and_skips_the_computation(tmp_path, monkeypatch):
  monkeypatch.setenv("MMSCALE_DATA_CACHE", str(tmp_path / "cache"))
  monkeypatch.setattr(length_cache, "_MEMO", {})
  values = [77.12345678901234, 1.0 / 3.0]
  calls = []
  key = length_cache.cache_key({"data_dir": str(tmp_path)}, 0, ["a", "b"], [10, 20])
  assert length_cache.mean_lengths(key, _compute(calls, values)) == values
  monkeypatch.setattr(length_cache, "_MEMO", {})  # A new process: only the disk holds it.
  assert length_cache.mean_lengths(key, _compute(calls, [0.0, 0.0])) == values
  assert len(calls) == 1
  (path,) = (tmp_path / "cache").iterdir()
  assert json.loads(path.read_text()) == values


def test_key_follows_the_files_the_config_names(tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  (data / "manifest.json").write_text("{}")
  cfg = {"data_dir": str(data), "streams": {"s": {"source": "corpus"}}}
  k1 = length_cache.cache_key(cfg, 0, ["s"], [5])
  assert length_cache.cache_key(cfg, 0, ["s"], [5]) == k1
  (data / "manifest.json").write_text('{"re-prepared": true}')
  os.utime(data / "manifest.json", ns=(1, 1))
  k2 = length_cache.cache_key(cfg, 0, ["s"], [5])
  assert k2 != k1
  assert length_cache.cache_key(cfg, 1, ["s"], [5]) != k2  # The seed orders the examples.
  assert length_cache.cache_key(cfg, 0, ["s"], [6]) != k2


def test_empty_setting_keeps_it_in_memory_only(tmp_path, monkeypatch):
  monkeypatch.setenv("MMSCALE_DATA_CACHE", "")
  monkeypatch.setattr(length_cache, "_MEMO", {})
  monkeypatch.chdir(tmp_path)
  calls = []
  key = length_cache.cache_key({}, 0, ["a"], [1])
  assert length_cache.mean_lengths(key, _compute(calls, [3.0])) == [3.0]
  assert length_cache.mean_lengths(key, _compute(calls, [4.0])) == [3.0]
  assert len(calls) == 1 and not list(tmp_path.iterdir())
