"""Where the host overhead comes from: the jitted step with one piece of the loop's host work added
at a time, each over the step alone (the profile behind bench_host_overhead's figure).

  python benchmarks/profile_host_overhead.py [--config=experiments/nmm.py:size=t1] [--repeats=7]

Variants, interleaved in one process (median of the repeats, each `--steps` steps):
  alone            the jitted step on pre-made device batches, back to back (the denominator)
  metric_sync      + every log_every steps, the pending metrics read back once the next step is
                   queued (the loop's sync point)
  device_put       + each step's batch moved from host numpy arrays (Trainer.device_batch)
  data             + each batch drawn from the run's data iterator (Grain mix, packing, prefetch)
  checkpoint       + one async save of the live state in the middle (RunCheckpoints.save)
Records, the progress bar and evals are left out: they cost well under 0.1 ms per step.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top


def main(argv=None):
  p = common.parser(__doc__)
  p.add_argument("--steps", type=int, default=90)
  p.add_argument("--log-every", type=int, default=10)
  p.set_defaults(repeats=7, config="experiments/nmm.py:size=t1")
  a = p.parse_args(argv)
  common.init_platform(a.platform)
  import jax  # pylint: disable=g-import-not-at-top
  from mmscale.train.checkpoint import RunCheckpoints  # pylint: disable=g-import-not-at-top

  trainer = common.build_trainer(common.load_config(a.config, a.set))
  timer = common.StepTimer(trainer, n_batches=4)
  timer.compile_seconds()
  host_batches = [next(trainer.data) for _ in range(4)]
  ckpt_dir = tempfile.mkdtemp(prefix="mmscale-profile-ckpt-")
  ckpt = RunCheckpoints(ckpt_dir, keep=1)
  saves = [0]

  def loop(batch_of, checkpoint=False):
    params, opt_state, pending, deferred = timer.params, timer.opt_state, [], []

    def steps():
      nonlocal params, opt_state
      with jax.set_mesh(trainer.mesh):
        for i in range(a.steps):
          params, opt_state, m = trainer.train_step(params, opt_state, batch_of(i), trainer.lr_input(1))
          if deferred:  # As the loop does: the read-back waits until the next step is queued.
            jax.device_get(deferred)
            deferred.clear()
          pending.append(m)
          if (i + 1) % a.log_every == 0:
            deferred.extend(pending)
            pending.clear()
          if checkpoint and i == a.steps // 2:
            saves[0] += 1
            ckpt.save(saves[0], {"params": params, "opt_state": opt_state}, {}, {"step": i})
        jax.block_until_ready(params)

    seconds = common.timed(steps, 1, warmup=0)[0] / a.steps
    timer.params, timer.opt_state = params, opt_state
    ckpt.wait()
    return seconds

  variants = {
      "alone": lambda: timer.step_seconds(a.steps, 1)[0],
      "metric_sync": lambda: loop(lambda i: timer.batches[i % 4]),
      "device_put": lambda: loop(lambda i: trainer.device_batch(host_batches[i % 4])),
      "data": lambda: loop(lambda i: trainer.device_batch(next(trainer.data))),
      "checkpoint": lambda: loop(lambda i: trainer.device_batch(next(trainer.data)), True),
  }
  loop(lambda i: trainer.device_batch(next(trainer.data)), True)  # Warm-up: the snapshot compiles.
  times = {k: [] for k in variants}
  for _ in range(a.repeats):
    for name, run in variants.items():
      times[name].append(run())
  ckpt.close()
  alone = common.median(times["alone"])
  common.emit({
      "benchmark": "host_overhead_profile", "config": a.config, "steps": a.steps,
      "ratio_over_step_alone": {k: common.median(v) / alone for k, v in times.items()},
      "ms_per_step": {k: 1e3 * common.median(v) for k, v in times.items()},
      "machine": common.machine(),
  })


if __name__ == "__main__":
  main()
