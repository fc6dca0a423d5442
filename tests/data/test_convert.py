"""`mmscale data convert`: user shards -> ArrayRecord shards + manifest; the converted corpus reads
back the same documents; bad examples are counted in the manifest; bad arguments are one line,
exit 2, nothing written."""

import json

import numpy as np
import pytest

from mmscale import cli as mm_cli
from mmscale.data import config as data_config
from mmscale.data import pipeline, sources
from tests.data import user_shards
from tests.data.conftest import make_config


@pytest.fixture(scope="module")
def user_data(tmp_path_factory, shipped):
  root = tmp_path_factory.mktemp("convert")
  user_shards.write_all(root, shipped)
  # One corrupt image among the Parquet rows (train row 2), to be skipped and counted.
  import pyarrow.parquet as pq
  t = pq.read_table(root / "pq" / "train-000.parquet").to_pylist()
  t[2]["image"]["bytes"] = b"\x89PNG\r\n\x1a\n" + b"\x00" * 50
  import pyarrow as pa
  pq.write_table(pa.Table.from_pylist(t), root / "pq" / "train-000.parquet", row_group_size=16)
  return root


@pytest.mark.parametrize("kind,sub", [("webdataset", "wds"), ("parquet", "pq"), ("obelics", "ob")])
def test_convert_reads_back_the_same_documents(tmp_path, user_data, kind, sub, capsys):
  out = tmp_path / "data"
  argv = ["mmscale", "data", "convert", f"--source={kind}", f"--path={user_data / sub}",
          f"--out={out}", f"--name=my_{sub}", "--licence=CC-BY-4.0", "--shard_size=25"]
  assert mm_cli.run(argv) == 0
  printed = capsys.readouterr().out
  m = json.loads((out / "manifest.json").read_text())[f"my_{sub}"]
  c = make_config(data_dir=str(out))
  c.data.streams = {"orig": data_config.stream(kind, path=str(user_data / sub)),
                    "conv": data_config.stream("corpus", f"my_{sub}")}
  data_config.validate(c)
  for split in ("train", "validation"):
    orig = sources.make_docs(c, "orig", split)
    conv = sources.make_docs(c, "conv", split)
    skipped = sum(m["skipped"][split].values())
    assert m["examples"][split] == len(conv) == len(orig) - skipped
    good = [i for i in range(len(orig)) if not (kind == "parquet" and split == "train" and i == 2)]
    raw = {"text": 0, "image": 0, "audio": 0}
    for j, i in enumerate(good):
      a, b = orig[i], conv[j]
      assert [k for k, _ in a] == [k for k, _ in b]
      for (k, x), (_, y) in zip(a, b):
        if k == "text":
          assert x == y
          raw["text"] += len(x.encode())
        else:
          np.testing.assert_array_equal(np.asarray(x).squeeze(), np.asarray(y).squeeze())
          raw["image"] += np.asarray(x).size
    assert m["raw_bytes"][split] == raw
    assert len(m["shards"][split]) == -(-len(orig) // 25)
  assert m["licence"] == "CC-BY-4.0" and m["source"] == kind
  if kind == "parquet":
    assert m["skipped"] == {"train": {"corrupt_image": 1}, "validation": {}}
    assert "skipped 1 corrupt_image" in printed
  assert next(pipeline.make_train_iterator(c))["tokens"].any()


@pytest.mark.parametrize("args,message", [
    ([], "mmscale data convert needs --source"),
    (["--source=zip", "--path={p}/wds", "--name=x"], "--source='zip': must be one of webdataset, parquet, obelics, hf"),
    (["--source=webdataset", "--path={p}/nowhere", "--name=x"], "no tar shards for split 'train'"),
    (["--source=webdataset", "--path={p}/wds", "--name=x", "--splits=train,test"],
     "no tar shards for split 'test'"),
    (["--source=webdataset", "--path={p}/wds", "--name=a/b"], "--name='a/b': must be a folder name"),
    (["--source=parquet", "--path={p}/pq", "--name=x", "--fields=image=image,text=alt"],
     "column 'alt' is not in"),
    (["--source=parquet", "--path={p}/pq", "--name=x", "--fields=smell=x"], "--fields='smell=x': must look like"),
])
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(tmp_path, user_data, capsys, args, message):
  out = tmp_path / "out"
  argv = ["mmscale", "data", "convert", f"--out={out}"] + [a.format(p=user_data) for a in args]
  assert mm_cli.run(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("mmscale: error: ") and message in err, err
  assert len(err.strip().splitlines()) == 1
  assert not out.exists()
