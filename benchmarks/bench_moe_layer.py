"""MoE layer fwd+bwd time over the dense SwiGLU of the same active size, per grouped matmul.

  python benchmarks/bench_moe_layer.py [--config=experiments/tiny.py] [--experts=8] [--top-k=1]
                                       [--block-sizes=0,64,128] [--repeats=7]

One layer, not the whole step: the tokens of one batch (data.batch_size x data.seq_len, width and
FFN hidden size from the config) through the dropless MoEFeedForward (router, sort, grouped
SwiGLU, scatter back, balancing losses) and through one dense SwiGLU with the expert's hidden size,
so top-1 routing meets the same parameters per token; "dense" is the model's layer on [B, L, D]
(3-D tensordots, as in the real step), "dense_2d" the same on the flattened [B*L, D]. MoE variants:
model.moe.grouped_matmul="blocks" (one per block size; 0 = the automatic size) and "ragged_dot".
All are jitted in this process and their timed calls interleave (one call of each per round), so
load from other jobs on the shared cores hits them alike; the medians over rounds are reported, of
wall time and of process CPU time (steadier when other jobs share the cores).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top


def main(argv=None):
  p = common.parser(__doc__)
  p.add_argument("--experts", type=int, default=8)
  p.add_argument("--top-k", type=int, default=1)
  p.add_argument("--block-sizes", default="0", help="comma-separated model.moe.block_size values")
  p.add_argument("--no-ragged", action="store_true", help="skip the (slow on CPU) ragged_dot path")
  a = p.parse_args(argv)
  common.init_platform(a.platform)
  import jax
  import jax.numpy as jnp
  from flax import nnx

  from mmscale.models import layers, moe, moe_kernels
  from mmscale.models.config import ffn_hidden

  config = common.load_config(a.config, list(a.set))
  m = config.model
  m.moe.update(dict(experts=a.experts, top_k=a.top_k, mode="dropless"))
  width, hidden = m.width, ffn_hidden(m.width, m.ffn_hidden, m.ffn_multiple)
  shape = (config.data.batch_size, config.data.seq_len, width)
  kx, km = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, shape)
  modality = jax.random.randint(km, shape[:2], 0, 2)
  valid = jnp.ones(shape[:2], bool)
  proj = jnp.cos(jnp.arange(x.size, dtype=jnp.float32)).reshape(shape)  # Fixed output cotangent.

  def moe_loss(layer, x):
    y, aux = layer(x, modality, valid)
    return jnp.sum(y * proj) + aux["lb_loss"] + aux["z_loss"]

  def dense_loss(layer, x):
    return jnp.sum(layer(x) * proj)

  def dense_2d_loss(layer, x):  # Tokens flattened first: plain [T, D] x [D, F] matmuls.
    return jnp.sum(layer(x.reshape(-1, width)).reshape(shape) * proj)

  swiglu = layers.SwiGLU(width, hidden, rngs=nnx.Rngs(0))
  variants = {"dense": (swiglu, dense_loss), "dense_2d": (swiglu, dense_2d_loss)}
  impls = [("blocks", int(b)) for b in a.block_sizes.split(",")]
  if not a.no_ragged:
    impls.append(("ragged_dot", 0))
  for impl, block in impls:
    m.moe.update(dict(grouped_matmul=impl, block_size=block))
    name = impl if impl == "ragged_dot" else f"blocks_b{block or 'auto'}"
    layer = moe.MoEFeedForward(config.model, nnx.Rngs(0), dtype=config.train.dtype)
    variants[name] = (layer, moe_loss)
  fns = {}
  for name, (layer, loss) in variants.items():
    step = jax.jit(nnx.value_and_grad(loss, argnums=(0, 1)))
    fns[name] = lambda step=step, layer=layer: jax.block_until_ready(step(layer, x))
    fns[name]()  # Compile.
  times, cpu = {name: [] for name in fns}, {name: [] for name in fns}
  for r in range(a.repeats):
    for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
      times[name] += common.timed(fns[name], 1, warmup=0, cpu=cpu[name])
  med = {name: common.median(t) for name, t in times.items()}
  med_cpu = {name: common.median(t) for name, t in cpu.items()}
  blocks = min((n for n in med if n.startswith("blocks")), key=med.get)
  common.emit({
      "benchmark": "moe_layer", "config": a.config, "overrides": a.set,
      "tokens": shape[0] * shape[1], "width": width, "hidden": hidden, "experts": a.experts,
      "top_k": a.top_k, "auto_block_size": moe_kernels.block_size(shape[0] * shape[1] * a.top_k,
                                                          a.experts),
      "figure": "moe_layer_fwd_bwd_over_dense", "best_blocks": blocks,
      "ratio_blocks_over_dense": med[blocks] / med["dense"],
      "ratio_blocks_over_dense_2d": med[blocks] / med["dense_2d"],
      "ratio_blocks_over_ragged_dot": (med[blocks] / med["ragged_dot"]
                                       if "ragged_dot" in med else None),
      "ratio_ragged_dot_over_dense": (med["ragged_dot"] / med["dense"]
                                      if "ragged_dot" in med else None),
      "cpu_ratio_blocks_over_dense_2d": med_cpu[blocks] / med_cpu["dense_2d"],
      "cpu_ratio_blocks_over_ragged_dot": (med_cpu[blocks] / med_cpu["ragged_dot"]
                                           if "ragged_dot" in med else None),
      "seconds_median": med, "cpu_seconds_median": med_cpu, "seconds": times,
      "machine": common.machine(),
  })


if __name__ == "__main__":
  main()
