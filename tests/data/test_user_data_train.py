"""A tiny run trained on a user's data and tokenizer: WebDataset + Parquet + OBELICS streams from
the shipped corpora, an image-only stream, a SentencePiece model or a tokenizer.json; eval records
carry per-source bits per raw byte and the data counters."""

import json
import os

import pytest

from experiments import nmm
from mmscale.data import config as data_config
from mmscale.train import loop
from tests.data import lab_tokenizers, user_shards


@pytest.mark.slow
@pytest.mark.parametrize("tok", ["sentencepiece", "tokenizer.json"])
def test_tiny_run_on_user_shards_and_tokenizer(tmp_path, shipped, tok):
  user_shards.write_all(tmp_path, shipped)
  if tok == "sentencepiece":
    path = lab_tokenizers.sentencepiece(shipped, tmp_path / "lab.model")
  else:
    path = lab_tokenizers.qwen_json(shipped, tmp_path / "tokenizer.json")
  c = nmm.get_config("size=t1,steps=4,image_loss=next_patch")
  c.train.warmup_steps, c.train.eval_points, c.train.eval_batches = 1, 1, 1
  c.data.tokenizer = str(path)
  c.data.augment.random_resized_crop, c.data.augment.flip = True, 0.5
  c.data.streams = {
      "wds": data_config.stream("webdataset", path=str(tmp_path / "wds"), weight=0.4),
      "pq": data_config.stream("parquet", path=str(tmp_path / "pq"), weight=0.2),
      "ob": data_config.stream("obelics", path=str(tmp_path / "ob"), weight=0.3),
      "img": data_config.stream("webdataset", path=str(tmp_path / "wds"), weight=0.1,
                                fields="image=png|jpg"),
  }
  summary = loop.train(c, str(tmp_path / "run"))
  assert summary["status"] == "done"
  with open(os.path.join(tmp_path, "run", "records.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  final = [r for r in rows if r["kind"] == "eval"][-1]
  val = final["val"]
  for s in ("wds", "pq", "ob"):
    assert val[s]["bpb"] > 0 and val[s]["loss"] > 0 and val[s]["targets_text"] > 0
  # The image-only stream has its own image loss; its text is only the markers (no raw bytes).
  assert val["img"]["loss_image"] > 0 and val["img"]["targets_image"] > 0
  assert val["wds"]["targets_image"] == val["pq"]["targets_image"]  # Same pairs, same images.
  shares = final["data_shares"]
  assert set(shares["sequences"]) == {"wds", "pq", "ob", "img"}
  assert shares["corrupt_records"] == 0 and shares["skipped"] == {}
  with open(os.path.join(tmp_path, "run", "config.json")) as f:
    assert json.load(f)["data"]["tokenizer"] == str(path)
