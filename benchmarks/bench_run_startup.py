"""What a sweep run costs before and around its steps, with the caches a sweep shares.

  python benchmarks/bench_run_startup.py [--data_dir=demo_out/data] [--steps=40] [--repeats=2]

Runs `mmscale train` on the demo's config (w16, 40 steps) three times in a row with three learning
rates, sharing one fresh compilation cache and one fresh length cache, as the runs of one
(architecture, size) in the demo's sweep do (a trunk, then cool-down branches with their own peak
and schedule). Prints each run's CPU seconds (user + system of the child, which is steadier than
wall time on a shared machine). The first run is cold; the others show what a run of an already
compiled shape costs. Needs prepared corpora (`mmscale data prepare --out demo_out/data`).
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cpu_children() -> float:
  r = resource.getrusage(resource.RUSAGE_CHILDREN)
  return r.ru_utime + r.ru_stime


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data_dir", default=os.path.join(REPO, "demo_out", "data"))
  p.add_argument("--steps", type=int, default=40)
  p.add_argument("--repeats", type=int, default=2)
  p.add_argument("--extra", nargs="*", default=[], help="more --config.a.b=v overrides")
  a = p.parse_args()
  if not os.path.isfile(os.path.join(a.data_dir, "manifest.json")):
    print(f"--data_dir={a.data_dir}: no prepared corpora (run `mmscale data prepare --out {a.data_dir}`)",
          file=sys.stderr)
    return 2
  for rep in range(a.repeats):
    tmp = tempfile.mkdtemp(prefix="bench_startup_")
    env = dict(os.environ, MMSCALE_COMPILE_CACHE=os.path.join(tmp, "xla"),
               MMSCALE_DATA_CACHE=os.path.join(tmp, "data"))
    costs = []
    for lr in (3e-3, 2e-3, 1e-3):
      before = _cpu_children()
      subprocess.run([sys.executable, "-m", "mmscale", "train", "--config=experiments/demo.py",
                      f"--config.data.data_dir={a.data_dir}", "--config.model.width=16",
                      "--config.model.encoder.width=8", f"--config.train.steps={a.steps}",
                      f"--config.train.lr={lr}", f"--workdir={os.path.join(tmp, f'run{lr}')}", *a.extra],
                     cwd=REPO, env=env, check=True, capture_output=True)
      costs.append(_cpu_children() - before)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"repeat {rep + 1}: CPU-s per run, cold then two more learning rates: "
          + ", ".join(f"{c:.1f}" for c in costs), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
