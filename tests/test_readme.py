"""Every ```bash block of README.md runs as written (with tiny overrides), in order, in a scratch dir.

The scratch directory links the repository's .venv and experiments/, so relative paths
(`.venv/bin/mmscale`, `runs/...`, `mmscale_data`) resolve as in a checkout, and what the
commands write stays out of it. The fast tests check that every command is understood and names
files that exist; the slow one runs them all (it downloads the corpora of `data prepare`).
"""

import os
import re
import shlex
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")

# Commands not run here (by how they start), with the reason; each must still be in the README.
SKIP = {
    "make demo": "81 runs (tens of CPU-minutes); tests/test_demo.py runs its quick variant end to "
                 "end, and the other blocks run its data, sweep, collect, fit and report commands",
    "XLA_FLAGS=": "the full demo again, as another machine would compute it (tens of CPU-minutes)",
    ".venv/bin/python -m mmscale.report.agreement ": "compares two finished full demos; "
                 "tests/report/test_agreement.py runs it on headlines it writes",
    "make test": "this is the test suite",
    ".venv/bin/tensorboard ": "a server that runs until it is stopped",
}
# Tiny overrides: (regex the command must match, flags appended or (old, new) replacements).
TINY = [
    # One held-out batch per stream: the 4 default ones made each eval point cost more than the 4
    # steps (about half of a command's CPU seconds).
    (r"mmscale train ", [(re.compile(r" --config\.train\.steps=\d+"), ""),
                         "--config.train.steps=4", "--config.train.warmup_steps=1",
                         "--config.train.eval_batches=1"]),
    (r"--sequences \d+", [(re.compile(r"--sequences \d+"), "--sequences 300")]),
    (r"--bootstrap=\d+", [(re.compile(r"--bootstrap=\d+"), "--bootstrap=4")]),
    (r"--launcher=slurm", ["--dry-run"]),  # No cluster here; tests/sweep/test_slurm.py has one.
    (r"mmscale\.sweep\.golden --update", [(" --update", "")]),  # Check, never rewrite, the dumps.
]


def bash_commands(text: str) -> list[str]:
  """The commands of every ```bash block, continuation lines joined, comments dropped."""
  out = []
  for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
    for line in block.replace("\\\n", " ").splitlines():
      words = shlex.split(line, comments=True)
      if words:
        out.append(shlex.join(words))
  return out


def tiny(command: str, scratch: str) -> str:
  for pattern, changes in TINY:
    if re.search(pattern, command):
      for change in changes:
        if isinstance(change, tuple):
          old, new = change
          command = old.sub(new, command) if hasattr(old, "sub") else command.replace(old, new)
        else:
          command += f" {change}"
  return re.sub(r"(?<=[= ])/tmp/", f"{scratch}/tmp/", command)


def skipped(command: str) -> bool:
  return any(command.startswith(prefix) for prefix in SKIP)


def _commands():
  with open(README, encoding="utf-8") as f:
    return bash_commands(f.read())


def test_every_command_is_run_or_skipped_for_a_reason():
  commands = _commands()
  assert len(commands) >= 10
  for prefix in SKIP:
    assert any(c.startswith(prefix) for c in commands), f"SKIP names {prefix!r}, not in the README"
  for command in commands:
    if skipped(command):
      continue
    assert command.startswith(".venv/bin/"), (
        f"README command {command!r}: write it as `.venv/bin/...` (runnable after "
        "`make install`) or add it to SKIP with the reason")


def test_every_file_a_command_names_exists():
  for command in _commands():
    for path in re.findall(r"--config=([\w./-]+\.py)", command):
      assert os.path.isfile(os.path.join(REPO, path)), f"README: {command!r} names {path}"


def test_the_study_example_is_the_study_file():
  with open(README, encoding="utf-8") as f:
    text = f.read()
  block = re.search(r"```python\n# experiments/my_study.py\n(.*?)```", text, flags=re.S).group(1)
  with open(os.path.join(REPO, "experiments", "my_study.py"), encoding="utf-8") as f:
    source = f.read()
  assert source.endswith(block)


def test_scratch_outputs_are_git_ignored():
  with open(os.path.join(REPO, ".gitignore"), encoding="utf-8") as f:
    ignored = f.read().split()
  for path in ("/runs/", "/demo_out/", "/demo_avx/", "/mmscale_data/"):
    assert path in ignored


@pytest.mark.slow
def test_readme_commands_run_in_order(tmp_path):
  scratch = str(tmp_path)
  for name in (".venv", "experiments"):
    os.symlink(os.path.join(REPO, name), os.path.join(scratch, name))
  os.makedirs(os.path.join(scratch, "tmp"))
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # A user's shell, not pytest's.
  env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
  for command in _commands():
    if skipped(command):
      continue
    run = tiny(command, scratch)
    r = subprocess.run(run, shell=True, cwd=scratch, env=env, capture_output=True, text=True,
                       timeout=1500)
    assert r.returncode == 0, f"README command failed: {run}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
