"""Per-device memory of the paper-size train steps, compiled ahead of time on this CPU machine:
which batch fits an 80 GB and a 141 GB device, on which mesh.

  python benchmarks/bench_paper_memory.py [--sizes=p1,p2,p3,p4,p5,p6] [--fusions=early,late]
      [--ffns=dense,moe] [--devices=8] [--rows=1,2,4,8,16] [--set KEY=VALUE ...]

Nothing is allocated: mmscale/train/aot.py traces the real train step (the config of
`experiments/nmm.py:size=pN,fusion=F,ffn=X,experts=8,vocab=50000`, bf16 compute, f32 params and
Adam state, 1k context, the default remat) on ShapeDtypeStruct inputs and XLA compiles it for
`--devices` forced host devices standing in for one 8-GPU node. Per device = arguments + outputs -
donated aliases + XLA's temp buffer, from `compiled.memory_analysis()` of the SPMD-partitioned
module.

Meshes: dense on mesh.fsdp=8 (parameters, gradients and Adam state split 8 ways, ZeRO-3); MoE
(8 experts, top-1) on mesh.expert=8 (one expert per device, the rest replicated) and on
mesh.fsdp=8. Rows per device go up the `--rows` list until the step no longer fits 141 GB.
Caveat: this is XLA:CPU's buffer assignment, fusion and scheduling, not XLA:GPU's; it is a
measured estimate, not the GPU's number. One JSON line per compiled step, then the summary.
"""

import os
import sys

DEVICES_FLAG = "--xla_force_host_platform_device_count"


def _force_devices(argv) -> None:
  """Forced host devices must be set before jax starts (and before common re-executes us)."""
  n = next((a.split("=", 1)[1] for a in argv if a.startswith("--devices=")), "8")
  flags = os.environ.get("XLA_FLAGS", "")
  if DEVICES_FLAG not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {DEVICES_FLAG}={n}".strip()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")


_force_devices(sys.argv)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import json  # pylint: disable=g-import-not-at-top,wrong-import-order
import time  # pylint: disable=g-import-not-at-top,wrong-import-order

import common  # pylint: disable=g-import-not-at-top

GB = 1e9
BUDGETS = {"80GB": 80 * GB, "141GB": 141 * GB}  # H100 80 GB; H200 141 GB.
MESHES = {"dense": ({"data": 1, "fsdp": -1, "expert": 1},),
          "moe": ({"data": 1, "fsdp": 1, "expert": -1}, {"data": 1, "fsdp": -1, "expert": 1})}


def step_memory(config, rows_per_device: int) -> dict:
  """Compiles the train step of `config` for its mesh and returns its per-device bytes."""
  import jax  # pylint: disable=g-import-not-at-top
  from mmscale import config as config_lib  # pylint: disable=g-import-not-at-top
  from mmscale import parallel  # pylint: disable=g-import-not-at-top
  from mmscale.train import aot  # pylint: disable=g-import-not-at-top
  config.data.batch_size = rows_per_device * jax.device_count()
  config = config_lib.resolve(config)
  mesh = parallel.make_mesh(config.mesh, config.data.batch_size)
  t0 = time.perf_counter()
  step, args = aot.train_step(config, mesh)
  with jax.set_mesh(mesh):
    lowered = step.trace(*args).lower()
  t1 = time.perf_counter()
  m = lowered.compile().memory_analysis()
  t2 = time.perf_counter()
  per_device = (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
                + m.temp_size_in_bytes)
  return {"mesh": dict(zip(parallel.AXES, (int(s) for s in mesh.axis_sizes))),
          "rows_per_device": rows_per_device, "global_batch": int(config.data.batch_size),
          "seq_len": int(config.data.seq_len), "remat": config.model.remat,
          "per_device_gb": per_device / GB, "temp_gb": m.temp_size_in_bytes / GB,
          "argument_gb": m.argument_size_in_bytes / GB, "output_gb": m.output_size_in_bytes / GB,
          "alias_gb": m.alias_size_in_bytes / GB,
          "trace_lower_s": round(t1 - t0, 1), "compile_s": round(t2 - t1, 1)}


def model_config(size, fusion, ffn, mesh, overrides):
  sets = ["train.dtype=bfloat16"] + [f"mesh.{k}={v}" for k, v in mesh.items()] + list(overrides)
  return common.load_config(spec(size, fusion, ffn), sets)


def spec(size, fusion, ffn) -> str:
  # V = 50,000: the text vocabulary of the README's parameter table (the paper's sizes).
  return f"experiments/nmm.py:size={size},fusion={fusion},ffn={ffn},experts=8,vocab=50000"


def main(argv=None):
  p = common.parser(__doc__)
  p.add_argument("--sizes", default="p1,p2,p3,p4,p5,p6")
  p.add_argument("--fusions", default="early,late")
  p.add_argument("--ffns", default="dense,moe")
  p.add_argument("--devices", type=int, default=8, help="forced host devices (one GPU node)")
  p.add_argument("--rows", default="1,2,4,8,16", help="rows per device to try, ascending")
  a = p.parse_args(argv)
  from mmscale import flops  # pylint: disable=g-import-not-at-top
  rows_list = [int(r) for r in a.rows.split(",")]
  summary = []
  for size in a.sizes.split(","):
    for fusion in a.fusions.split(","):
      for ffn in a.ffns.split(","):
        for mesh in MESHES[ffn]:
          fits, counts, used = {}, None, mesh
          for rows in rows_list:
            config = model_config(size, fusion, ffn, mesh, a.set)
            counts = counts or flops.param_counts(common.load_config(spec(size, fusion, ffn)))
            try:
              r = step_memory(config, rows)
            except Exception as e:  # pylint: disable=broad-except  (reported, next model)
              error = f"{type(e).__name__}: {e}"[:400]
              print(json.dumps({"size": size, "fusion": fusion, "ffn": ffn, "mesh": mesh,
                                "rows_per_device": rows, "error": error}), flush=True)
              break
            r = {"size": size, "fusion": fusion, "ffn": ffn, "params": counts["params"],
                 "active_params": counts["active_params"], **r}
            print(json.dumps(r), flush=True)
            used = r["mesh"]
            for name, budget in BUDGETS.items():
              if r["per_device_gb"] * GB <= budget:
                fits[name] = {"rows_per_device": rows, "global_batch": r["global_batch"],
                              "per_device_gb": round(r["per_device_gb"], 1)}
            if r["per_device_gb"] * GB > max(BUDGETS.values()):
              break
          summary.append({"size": size, "fusion": fusion, "ffn": ffn, "mesh": used,
                          "params": counts["params"], "fits": fits})
  common.emit({"benchmark": "paper_memory", "budgets_gb": {k: v / GB for k, v in BUDGETS.items()},
               "summary": summary, "machine": common.machine()})


if __name__ == "__main__":
  main()
