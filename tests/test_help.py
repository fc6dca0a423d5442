"""`mmscale <command> [sub] --help`: every flag with its help text, exit 0, no jax, a fast start."""

import importlib
import os
import resource
import subprocess
import sys

import pytest

from mmscale import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every command line a user may ask help for: the commands, and data's subcommands.
HELP_CALLS = [[c] for c in cli.COMMANDS] + [["data", "prepare"], ["data", "stats"], ["data", "convert"]]


def _expected_flags(call):
  module = importlib.import_module(cli.COMMANDS[call[0]][0])
  names = getattr(module, "HELP_FLAGS", {}).get(" ".join(call))
  # Overrides (config.a.b) a previous in-process parse registered are not flags of the command.
  return module.FLAGS, (names if names is not None else
                        [n for n in module.FLAGS if not n.startswith("config.")])


@pytest.mark.parametrize("call", HELP_CALLS, ids=" ".join)
def test_help_lists_every_flag_with_its_help(call, capsys):
  assert cli.run(["mmscale", *call, "--help"]) == 0
  out = capsys.readouterr().out
  assert out.startswith(f"mmscale {' '.join(call)}: {cli.COMMANDS[call[0]][1]}\n")
  flag_values, names = _expected_flags(call)
  assert names, call
  for name in names:
    flag = flag_values[name]
    entry = f"--[no]{name}:" if flag.boolean else f"--{name}:"
    assert f"\n  {entry}" in out, (call, name)
    assert " ".join(flag.help.split()[:3]) in " ".join(out.split()), (call, name)
  listed = {l.split(":")[0].strip().removeprefix("--[no]").removeprefix("--")
            for l in out.splitlines() if l.startswith("  --")}
  assert listed == set(names), call  # Exactly the command's own flags.


def test_subcommand_help_is_split():
  module = importlib.import_module("mmscale.sweep.cli")
  assert set(module.HELP_FLAGS["status"]) == {"root", "json"}
  assert "slurm_args" in module.HELP_FLAGS["sweep"] and "json" not in module.HELP_FLAGS["sweep"]
  data = importlib.import_module("mmscale.data.cli")
  own = {n for n in data.FLAGS if not n.startswith("config.")}  # Not overrides an earlier parse left.
  assert set().union(*(data.HELP_FLAGS[f"data {s}"] for s in ("prepare", "stats", "convert"))) == own


def test_help_for_an_unknown_subcommand_is_one_line(capsys):
  assert cli.run(["mmscale", "data", "bogus", "--help"]) == 2
  assert capsys.readouterr().err == ("mmscale: error: mmscale data: unknown subcommand 'bogus' "
                                     "(allowed: prepare, stats, convert)\n")


def test_help_imports_no_jax():
  """All help texts in one fresh interpreter; neither jax nor matplotlib may be loaded after."""
  code = ("import sys, io, contextlib\nfrom mmscale import cli\n"
          f"for call in {HELP_CALLS!r}:\n"
          "  with contextlib.redirect_stdout(io.StringIO()):\n"
          "    assert cli.run(['mmscale', *call, '-h']) == 0, call\n"
          "print(sorted(m for m in ('jax', 'jaxlib', 'matplotlib', 'scipy', 'orbax') if m in sys.modules))")
  r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0, r.stderr
  assert r.stdout.strip() == "[]"


def test_help_starts_in_under_a_second_of_cpu():
  """CPU time of `python -m mmscale CMD --help` (user + system, so a busy machine does not count)."""
  for call in HELP_CALLS:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-m", "mmscale", *call, "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.returncode == 0 and "flags:" in r.stdout, r.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu <= 1.0, (call, cpu)


def test_help_piped_into_head_is_quiet():
  """`mmscale sweep --help | head -1`: the reader leaves early; no BrokenPipeError traceback."""
  r = subprocess.run(f"{sys.executable} -m mmscale sweep --help | head -1", shell=True, cwd=ROOT,
                     capture_output=True, text=True, timeout=60)
  assert r.stdout.startswith("mmscale sweep: ") and r.stdout.count("\n") == 1
  assert r.stderr == "", r.stderr
