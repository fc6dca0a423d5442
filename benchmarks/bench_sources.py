"""Are the user-data sources fast enough? Batches/s of the pipeline per source kind against the
batches/s the t1 train step consumes (target: >= 10x, what the built-in sources reach).

  python benchmarks/bench_sources.py [--config=experiments/nmm.py:size=t1] [--examples=1500]

Shards are written from the shipped corpora (Tux Paint and Fashion-MNIST pairs: WebDataset tar
of png/jpg + txt/json, Parquet rows, the same converted to ArrayRecord by `mmscale data convert`;
GIMP manual pages: OBELICS rows), fetched from Debian once into MMSCALE_TEST_PACKAGES
(default ~/.cache/mmscale-tests/_packages, as the tests do). Each source is read with
data.prefetch=0, so all the work happens in this thread (the trainer's prefetch thread does it
behind the step): "cold" with no example cache (every batch decodes and tokenizes its examples:
the first epoch, or a corpus larger than the cache), "warm" after one epoch with the default
cache. The step is timed as bench_pipeline does: the jitted t1 step on ready batches.
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top

PACKAGES = os.environ.get("MMSCALE_TEST_PACKAGES",
                          os.path.join(os.path.expanduser("~"), ".cache", "mmscale-tests", "_packages"))


def write_shards(root, examples: int) -> tuple[dict, dict]:
  """root/{wds,pq,ob,ar}: the shards of each kind -> (train counts, {kind: (source, path)})."""
  sys.path.insert(0, common.ROOT)
  from mmscale.data.corpora import CORPORA  # pylint: disable=g-import-not-at-top
  from mmscale.data import convert  # pylint: disable=g-import-not-at-top
  from tests.data import user_shards  # pylint: disable=g-import-not-at-top
  docs = {n: CORPORA[n].convert(CORPORA[n].fetch(PACKAGES), examples)
          for n in ("fashion_mnist", "tuxpaint", "gimp")}
  for d in ("wds", "pq", "ob"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
  for split in ("train", "validation"):
    tux = user_shards.caption_pairs(docs["tuxpaint"][split])
    fm = user_shards.caption_pairs(docs["fashion_mnist"][split])
    user_shards.write_webdataset(os.path.join(root, "wds", f"{split}-000.tar"), tux, "png", "txt")
    user_shards.write_webdataset(os.path.join(root, "wds", f"{split}-001.tar"), fm, "jpg", "json")
    user_shards.write_parquet(os.path.join(root, "pq", f"{split}-000.parquet"), tux + fm, 64)
    user_shards.write_obelics(os.path.join(root, "ob", f"{split}-000.parquet"), docs["gimp"][split], 16)
  convert.convert("webdataset", os.path.join(root, "wds"), root, "ar", image_format="raw",
                  echo=lambda *_: None)
  n = {"pairs": len(docs["tuxpaint"]["train"]) + len(docs["fashion_mnist"]["train"]),
       "pages": len(docs["gimp"]["train"])}
  return n, {"webdataset": ("webdataset", os.path.join(root, "wds")),
             "parquet": ("parquet", os.path.join(root, "pq")),
             "obelics": ("obelics", os.path.join(root, "ob")),
             "array_record (converted)": ("array_record", os.path.join(root, "ar")),
             "webdataset + crop/flip": ("webdataset", os.path.join(root, "wds")),
             "built-in: the config's procedural mixture": (None, None),
             "built-in: procedural caption": ("procedural", None)}


def source_rate(config, kind, source, path, batches: int, warm: bool) -> float:
  """Batches/s of one source. Cold: caching off, every example decoded in this thread. Warm: the
  default example cache (data.cache_examples), timed after one epoch has filled it, the steady
  state of a run that repeats its data (crops are still drawn and encoded per position)."""
  from mmscale.data import config as data_config  # pylint: disable=g-import-not-at-top
  from mmscale.data import pipeline  # pylint: disable=g-import-not-at-top
  c = config.copy_and_resolve_references()
  if source == "procedural":
    c.data.streams = {"s": data_config.stream("procedural", "caption")}
  elif source:  # Else the config's own streams (the built-in reference).
    c.data.streams = {"s": data_config.stream(source, path=path)}
  c.data.prefetch = 0
  if not warm:
    c.data.cache_examples = 0
  if "crop" in kind:
    c.data.augment.random_resized_crop, c.data.augment.flip = True, 0.5
  it = pipeline.make_train_iterator(c)
  next(it)  # Start-up (opening and indexing the shards) is not throughput.
  if warm:
    size = sum(len(s) for s in it._sources)  # pylint: disable=protected-access
    size = min(size, 20 * c.data.batch_size * 50)  # Procedural streams are regenerated, not cached.
    while sum(it.get_state()["examples"]) < 1.1 * size:
      next(it)
  t0 = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches / (time.perf_counter() - t0)


def main():
  p = common.parser(__doc__)
  p.set_defaults(config="experiments/nmm.py:size=t1", repeats=3)
  p.add_argument("--examples", type=int, default=1500, help="train pairs per corpus")
  p.add_argument("--batches", type=int, default=60)
  p.add_argument("--steps", type=int, default=20)
  args = p.parse_args()
  config = common.load_config(args.config, args.set)
  root = tempfile.mkdtemp(prefix="bench_sources_")
  try:
    counts, kinds = write_shards(root, args.examples)
    timer = common.StepTimer(common.build_trainer(common.load_config(args.config, args.set)), 4)
    timer.run(1)  # Compile.
    step_rates, rates = [], {(k, w): [] for k in kinds for w in ("cold", "warm")}
    for _ in range(args.repeats):  # Interleaved, so load drift hits every figure alike.
      step_rates.append(args.steps / common.median(common.timed(lambda: timer.run(args.steps), 1)))
      for (k, w), r in rates.items():
        r.append(source_rate(config, k, *kinds[k], args.batches, w == "warm"))
    step = common.median(step_rates)
    out = {"benchmark": "sources", "config": args.config, "figure": "batches_per_s / step_per_s",
           "shards": counts, "step_per_s": step, "step_runs": step_rates, "sources": {}}
    for (k, w), r in rates.items():
      out["sources"].setdefault(k, {})[w] = {
          "batches_per_s": common.median(r), "ratio": common.median(r) / step, "runs": r}
    out["machine"] = common.machine()
    common.emit(out)
  finally:
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  main()
