"""Model FLOPs utilisation of the train step: model FLOP/s over the device's peak, same process.

  python benchmarks/bench_mfu.py                                   # tiny config, CPU
  python benchmarks/bench_mfu.py --size=p4 --dtype=bfloat16 --batch=8 --platform=gpu   # 1.63B
  python benchmarks/bench_mfu.py --size=p4 --ffn=moe --dtype=bfloat16 --batch=8 --platform=gpu

Model FLOPs per step = flops_per_token(config) x batch x seq_len (every position, padding included,
because the step computes them all); "6N+attn" is the headline (it counts the attention products;
MoE counts active parameters only), "6N" is given too. Peak: on CPU a large float32 matmul timed in
this process (targets are stated against it); on GPU/TPU the data-sheet dense bf16 peak and a
measured bf16 matmul. Attention (config.model.attention_impl): --attention=pallas (the default on
GPU: mmscale's flash kernel on the mask's intervals), cudnn (cuDNN flash attention with the mask as
a dense bias) or xla.
Sizes: --size=p1..p6 (experiments/nmm.py; p3 = 932M, p4 = 1.63B early fusion, 1k context) or t1..t4.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top

SIZE_ALIASES = {"275M": "p1", "464M": "p2", "932M": "p3", "1.63B": "p4", "2.28B": "p5",
                "3.35B": "p6"}


def _compiled(config, attention, steps):
  config.model.attention_impl = attention
  trainer = common.build_trainer(config)
  timer = common.StepTimer(trainer, n_batches=min(steps, 4))
  return trainer, timer, timer.compile_seconds()


def main(argv=None):
  p = common.parser(__doc__)
  p.add_argument("--size", default="",
                 help="experiments/nmm.py size (t1..t4, p1..p6, or 932M/1.63B)")
  p.add_argument("--fusion", default="early")
  p.add_argument("--ffn", default="", help="dense | moe (8 experts, top-1 by default) | modality")
  p.add_argument("--dtype", default="", help="float32 | bfloat16 (config.train.dtype)")
  p.add_argument("--batch", type=int, default=0, help="global batch rows (config.data.batch_size)")
  p.add_argument("--seq-len", type=int, default=0)
  p.add_argument("--remat", default="", help="none | full | dots | dots_no_batch | block_io (config.model.remat)")
  p.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
  p.add_argument("--attention", default="auto", help="auto (pallas on GPU, else xla) | pallas | cudnn | xla")
  p.add_argument("--matmul-n", type=int, default=0, help="peak matmul size (0: 2048 CPU, 8192 GPU)")
  p.add_argument("--profile", default="", help="write a jax profiler trace of one repeat here")
  a = p.parse_args(argv)
  common.init_platform(a.platform)
  import jax  # pylint: disable=g-import-not-at-top

  if a.size:
    size = SIZE_ALIASES.get(a.size, a.size)
    a.config = f"experiments/nmm.py:size={size},fusion={a.fusion}"
  overrides = list(a.set)
  for key, value in (("model.ffn", a.ffn), ("train.dtype", a.dtype), ("data.batch_size", a.batch),
                     ("data.seq_len", a.seq_len), ("model.remat", a.remat)):
    if value:
      overrides.append(f"{key}={value}")
  config = common.load_config(a.config, overrides)
  backend = jax.default_backend()
  attention = a.attention if a.attention != "auto" else ("pallas" if backend == "gpu" else "xla")

  from mmscale import flops as flops_lib  # pylint: disable=g-import-not-at-top
  attention_note = ""
  try:
    trainer, timer, compile_s = _compiled(config, attention, a.steps)
  except Exception as e:  # pylint: disable=broad-except  # A kernel rejects the shape or fails to lower.
    if attention == "xla":
      raise
    attention_note = f"{attention} rejected ({str(e).splitlines()[0]}); fell back to xla"
    print(f"bench_mfu: {attention_note}", file=sys.stderr)
    attention = "xla"
    trainer, timer, compile_s = _compiled(config, attention, a.steps)
  config = trainer.config
  dtype = str(config.train.dtype)
  if backend == "cpu":  # Targets on CPU are stated against the float32 matmul.
    n = a.matmul_n or 2048
    meters = {"measured_float32_matmul": common.MatmulPeak("float32", n)}
    if dtype != "float32":
      meters[f"measured_{dtype}_matmul"] = common.MatmulPeak(dtype, n)
  else:
    meters = {"measured_bfloat16_matmul": common.MatmulPeak("bfloat16", a.matmul_n or 8192, 16)}
  # Steps and peak samples alternate, so each repeat's MFU divides times taken under the same load.
  step_s, samples = [], {k: [] for k in meters}
  for _ in range(a.repeats):
    step_s += timer.step_seconds(a.steps, 1)
    for k, m in meters.items():
      samples[k].append(m.sample())
  if a.profile:
    with jax.profiler.trace(a.profile):
      timer.run(a.steps)
  step = common.median(step_s)

  positions = int(config.data.batch_size) * int(config.data.seq_len)
  per_token = flops_lib.flops_per_token(config)
  step_flops = {k: per_token[k] * positions for k in ("6N+attn", "6N")}
  model_flops = {k: f / step for k, f in step_flops.items()}
  nd = jax.device_count()
  # Per-repeat MFU (model FLOP/s of that repeat over the peak sampled right after it), median.
  mfu_by_peak = {f"{conv}/{k}": common.median(step_flops[conv] / s / nd / pk
                                              for s, pk in zip(step_s, samples[k]))
                 for conv in step_flops for k in meters}
  peaks = {k: common.median(v) for k, v in samples.items()}
  spec = common.spec_peak(jax.devices()[0]) if backend != "cpu" else None
  if spec:
    peaks["spec_bfloat16"] = spec
    for conv in step_flops:
      mfu_by_peak[f"{conv}/spec_bfloat16"] = model_flops[conv] / nd / spec
  headline_peak = "spec_bfloat16" if spec else next(iter(meters))
  counts = trainer.counts
  mfu = mfu_by_peak[f"6N+attn/{headline_peak}"]
  common.emit({
      "benchmark": "mfu", "config": a.config, "overrides": overrides,
      "figure": "mfu", "mfu": mfu,
      "mfu_by_peak": mfu_by_peak,
      "target": ("GPU: >= 0.50 dense 1.63B, >= 0.35 its 8-expert top-1 MoE (bf16, 1k context)"
                 if backend != "cpu" else "none on CPU (reported)"),
      "model": {"fusion": config.model.fusion, "ffn": config.model.ffn, "width": config.model.width,
                "depth": config.model.depth, "heads": config.model.heads, "dtype": dtype,
                "params": counts["params"], "active_params": counts["active_params"],
                "remat": config.model.remat},
      "batch": int(config.data.batch_size), "seq_len": int(config.data.seq_len),
      "attention": attention, "attention_note": attention_note,
      "flops_per_step": step_flops,
      "step_seconds_median": step, "step_seconds": step_s, "compile_seconds": compile_s,
      "model_flops_per_second": model_flops, "peak_flops_per_second": peaks,
      "headline_peak": headline_peak, "machine": common.machine(),
  })


if __name__ == "__main__":
  main()
