"""`mmscale data prepare|stats|convert`.

  mmscale data prepare --out DIR [--corpora=fashion_mnist,brown] [--max_examples=10000]
  mmscale data stats --config=experiments/tiny.py --sequences=10000 [--json]
  mmscale data convert --source=webdataset|parquet|obelics --path=SHARDS --out=DIR --name=NAME
"""

import json

from absl import flags
from ml_collections import config_flags

from mmscale import outputs
from mmscale.errors import UserError
from mmscale.flagparse import parse_flags

FLAGS = flags.FlagValues()
flags.DEFINE_string("out", None, "prepare, convert: output folder (use it as config.data.data_dir)",
                    flag_values=FLAGS)
flags.DEFINE_list("corpora", [], "prepare: corpora to prepare (default: all)", flag_values=FLAGS)
flags.DEFINE_integer("max_examples", 10_000, "prepare: cap on train examples per corpus "
                     "(validation: a tenth)", flag_values=FLAGS)
flags.DEFINE_integer("bpe_vocab_size", 1024, "prepare: BPE vocabulary size", flag_values=FLAGS)
config_flags.DEFINE_config_file("config", None, "stats: experiment config file", flag_values=FLAGS,
                                lock_config=False)
flags.DEFINE_integer("sequences", 10_000, "stats: packed sequences to draw", flag_values=FLAGS)
flags.DEFINE_bool("json", False, "stats: print JSON instead of a table", flag_values=FLAGS)
flags.DEFINE_integer("process_index", 0, "stats: process whose share to draw", flag_values=FLAGS)
flags.DEFINE_integer("process_count", 1, "stats: number of processes", flag_values=FLAGS)
flags.DEFINE_string("source", None, "convert: webdataset, parquet, obelics or hf", flag_values=FLAGS)
flags.DEFINE_string("path", None, "convert: folder of <split>-*.tar|parquet shards, or a glob with "
                    "{split}", flag_values=FLAGS)
flags.DEFINE_string("name", None, "convert: the corpus folder under --out (stream('corpus', NAME))",
                    flag_values=FLAGS)
flags.DEFINE_string("fields", "", "convert: parts and where they are, e.g. image=jpg|png,text=txt "
                    "(default per source)", flag_values=FLAGS)
flags.DEFINE_list("splits", ["train", "validation"], "convert: splits to convert", flag_values=FLAGS)
flags.DEFINE_string("licence", "", "convert: licence recorded in the manifest", flag_values=FLAGS)
flags.DEFINE_integer("shard_size", 2000, "convert: documents per ArrayRecord shard", flag_values=FLAGS)
flags.DEFINE_string("image_format", "png", "convert: images stored as png or raw (bigger, faster "
                    "to read)", flag_values=FLAGS)

# `mmscale data prepare --help` and `data stats --help` list their own flags (help says which).
HELP_FLAGS = {f"data {sub}": [n for n in FLAGS if sub in FLAGS[n].help.split(":")[0].split(", ")]
              for sub in ("prepare", "stats", "convert")}

USAGE = ("usage: mmscale data prepare --out DIR [--corpora ...] | mmscale data stats --config=FILE"
         " | mmscale data convert --source=KIND --path=SHARDS --out=DIR --name=NAME")


def _default_config():
  from mmscale import config as mm_config  # pylint: disable=g-import-not-at-top
  return mm_config.base_config()


def main(argv: list[str]) -> int:
  if len(argv) < 2 or argv[1] not in ("prepare", "stats", "convert"):
    raise UserError(USAGE)
  sub = argv[1]
  parse_flags(FLAGS, [f"{argv[0]} {sub}"] + argv[2:])
  if sub == "prepare":
    from mmscale.data.corpora import CORPORA, prepare  # pylint: disable=g-import-not-at-top
    if not FLAGS.out:
      raise UserError("mmscale data prepare needs --out DIR")
    unknown = [c for c in FLAGS.corpora if c not in CORPORA]
    if unknown:
      raise UserError(f"--corpora: unknown corpus {unknown[0]!r}; known: {', '.join(CORPORA)}")
    if FLAGS.max_examples < 1:
      raise UserError(f"--max_examples={FLAGS.max_examples}: must be a positive integer")
    from mmscale.data.tokenizers import N_SPECIAL  # pylint: disable=g-import-not-at-top
    if FLAGS.bpe_vocab_size < N_SPECIAL + 256:  # Byte-level BPE: the specials and 256 bytes first.
      raise UserError(f"--bpe_vocab_size={FLAGS.bpe_vocab_size}: must be at least "
                      f"{N_SPECIAL + 256} (the special tokens and the 256 bytes)")
    outputs.check_dir("out", FLAGS.out)
    prepare.prepare(FLAGS.out, FLAGS.corpora or None, FLAGS.max_examples, FLAGS.bpe_vocab_size)
    return 0
  if sub == "convert":
    for flag in ("source", "path", "out", "name"):
      if not FLAGS[flag].value:
        raise UserError(f"mmscale data convert needs --{flag}; {USAGE}")
    outputs.check_dir("out", FLAGS.out)
    from mmscale.data import convert  # pylint: disable=g-import-not-at-top
    convert.convert(FLAGS.source, FLAGS.path, FLAGS.out, FLAGS.name, FLAGS.fields, FLAGS.splits,
                    FLAGS.licence, FLAGS.shard_size, FLAGS.image_format)
    return 0
  from mmscale.data import stats  # pylint: disable=g-import-not-at-top
  config = FLAGS.config if FLAGS.config is not None else _default_config()
  if FLAGS.sequences < 1:
    raise UserError(f"--sequences={FLAGS.sequences}: must be a positive integer")
  if not 0 <= FLAGS.process_index < FLAGS.process_count:
    raise UserError(f"--process_index={FLAGS.process_index} --process_count={FLAGS.process_count}: "
                    "need 0 <= process_index < process_count")
  s = stats.measure(config, FLAGS.sequences, FLAGS.process_index, FLAGS.process_count)
  print(json.dumps(s, indent=1) if FLAGS.json else stats.format_table(s))
  return 0
