"""Device mesh, logical-axis sharding rules and multi-host start-up.

The mesh has three named axes: "data" (pure data parallelism), "fsdp" (data parallelism whose
parameters are sharded too, ZeRO-3 style) and "expert" (MoE experts are split over it; for every
other layer it is one more data-parallel axis, as in GShard, so no device computes a token twice).
Parameters carry logical axis names ("embed", "mlp", "expert", ...) in their nnx `out_sharding`
metadata; `param_spec` turns names + shape into a PartitionSpec on this mesh.

This stage reads only config.mesh; what it needs from other stages (the global batch size, the MoE
expert count) it takes as explicit arguments (mmscale/stages.py: batch_size, experts).
"""

import math
import numbers
import os

import jax
import ml_collections
import numpy as np
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from mmscale.errors import ConfigError, UserError


AXES = ("data", "fsdp", "expert")
# The batch dimension is split over every axis (the expert axis is data-parallel outside experts).
BATCH_AXES = AXES
# Logical names that FSDP may shard: the largest such dimension of a parameter goes over "fsdp".
FSDP_NAMES = ("embed", "mlp")


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.data = -1  # -1: all devices left over by the other axes.
  c.fsdp = 1
  c.expert = 1
  return c


def validate(mesh, *, batch_size: int | None = None, experts: int | None = None) -> None:
  """Static checks of config.mesh (`mesh`) against the global batch size and, for a MoE model,
  the expert count; the device count is only known (and checked) in make_mesh."""
  m = mesh
  for axis in AXES:
    v = m[axis]
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or (v <= 0 and v != -1):
      raise ConfigError(f"mesh.{axis}", v, "must be a positive integer or -1 (remaining devices)")
  if sum(m[a] == -1 for a in AXES) > 1:
    raise ConfigError("mesh", m.to_dict(), "at most one axis may be -1")
  known = math.prod(m[a] for a in AXES if m[a] != -1)
  if batch_size is not None and batch_size % known:
    raise ConfigError("data.batch_size", batch_size, f"must be divisible by the mesh size {known} "
                      f"(mesh.data*mesh.fsdp*mesh.expert without -1 axes)")
  if experts and m.expert != -1 and experts % m.expert:
    raise ConfigError("mesh.expert", m.expert, f"must divide config.model.moe.experts={experts}")


def mesh_shape(mesh, n_devices: int | None = None) -> tuple[int, int, int]:
  """Axis sizes (data, fsdp, expert) of config.mesh for `n_devices` (default: all devices); -1 is
  filled in."""
  n = jax.device_count() if n_devices is None else n_devices
  sizes = [int(mesh[a]) for a in AXES]
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if n % known:
      raise UserError(f"config.mesh={dict(zip(AXES, sizes))}: the fixed axes ({known} devices) "
                      f"do not divide the {n} available devices")
    sizes[sizes.index(-1)] = n // known
  if math.prod(sizes) != n:
    raise UserError(f"config.mesh={dict(zip(AXES, sizes))}: the axis sizes multiply to "
                    f"{math.prod(sizes)} but there are {n} devices")
  return tuple(sizes)


def make_mesh(mesh, batch_size: int | None = None) -> jax.sharding.Mesh:
  """The ("data", "fsdp", "expert") mesh of config.mesh over all devices of all processes;
  batch_size: the global batch, which must split evenly over it."""
  shape = mesh_shape(mesh)
  batch = batch_size
  if batch is not None and batch % math.prod(shape):
    raise UserError(f"config.data.batch_size={batch}: must be divisible by the {math.prod(shape)} "
                    f"devices of the mesh {dict(zip(AXES, shape))}")
  # Auto axes: XLA propagates shardings; the MoE layer switches to manual (shard_map) itself.
  return jax.make_mesh(shape, AXES, axis_types=(AxisType.Auto,) * len(AXES))


def axis_size(mesh, name: str) -> int:
  return dict(zip(mesh.axis_names, mesh.axis_sizes)).get(name, 1) if mesh is not None else 1


def param_spec(names, shape, mesh) -> P:
  """PartitionSpec of a parameter with logical axis `names` on `mesh`.

  "expert" dims go over the expert axis; the largest "embed"/"mlp" dim over "fsdp". A dim whose
  size the mesh axis does not divide stays replicated rather than failing.
  """
  if names is None:
    return P()
  names = tuple(names)
  if len(names) != len(shape):
    raise ValueError(f"logical axes {names} do not match the parameter shape {shape}")
  spec = [None] * len(shape)
  n_expert, n_fsdp = axis_size(mesh, "expert"), axis_size(mesh, "fsdp")
  for i, name in enumerate(names):
    if name == "expert" and n_expert > 1 and shape[i] % n_expert == 0:
      spec[i] = "expert"
  if n_fsdp > 1:
    dims = [i for i, name in enumerate(names) if name in FSDP_NAMES and spec[i] is None
            and shape[i] % n_fsdp == 0]
    if dims:
      spec[max(dims, key=lambda i: shape[i])] = "fsdp"
  return P(*spec)


def _is_var(x) -> bool:
  return isinstance(x, nnx.Variable)


def _logical_names(v):
  names = v.get_metadata("out_sharding", None)
  return tuple(names) if names else None


def model_shardings(tree, mesh):
  """NamedShardings for every Variable of `tree` (a module or an nnx.State), same structure."""
  state = nnx.state(tree) if isinstance(tree, nnx.Module) else tree

  def one(v):
    shape = np.shape(v.get_value())
    return v.replace(NamedSharding(mesh, param_spec(_logical_names(v), shape, mesh)))

  return jax.tree.map(one, state, is_leaf=_is_var)


def _put(x, sharding: NamedSharding):
  if jax.process_count() == 1 or not hasattr(x, "shape"):
    return jax.device_put(x, sharding)
  # Several processes: every process holds the same initial value (same seed); each one fills
  # its own shards of the global array from it.
  if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    impl = jax.random.key_impl(x)
    data = _put(jax.random.key_data(x), sharding)
    return jax.random.wrap_key_data(data, impl=impl)
  host = np.asarray(x)
  return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def shard_model(model, mesh):
  """Places every Variable of an nnx model on `mesh` per its logical axes (in place); returns it."""
  state = nnx.state(model)
  shardings = model_shardings(state, mesh)
  placed = jax.tree.map(lambda v, s: v.replace(_put(v.get_value(), s.get_value())),
                        state, shardings, is_leaf=_is_var)
  nnx.update(model, placed)
  return model


def opt_state_shardings(tx, params, mesh):
  """Shardings of `tx.init(params)`: every leaf whose key path ends in a parameter's path (Adam's
  moments, inside any masked or multi_transform state) is split like that parameter, everything
  else (step counts) replicated. `params`: arrays or ShapeDtypeStructs carrying their shardings.
  A bare `jax.jit(tx.init)` leaves the choice to XLA, which replicated the moments: mesh.fsdp then
  split only a third of the training state.
  """
  flat, _ = jax.tree_util.tree_flatten_with_path(params)
  by_path = {tuple(path): (x.shape, x.sharding) for path, x in flat}
  replicated = NamedSharding(mesh, P())

  def pick(path, leaf):
    for start in range(len(path)):
      shape, sharding = by_path.get(tuple(path[start:]), (None, None))
      if sharding is not None and shape == leaf.shape:
        return sharding
    return replicated

  return jax.tree_util.tree_map_with_path(pick, jax.eval_shape(tx.init, params))


def batch_sharding(mesh) -> NamedSharding:
  """Sharding of [B, L, ...] batch arrays: rows split over all mesh axes."""
  return NamedSharding(mesh, P(BATCH_AXES))


def batch_axes(mesh, batch: int) -> tuple[str, ...]:
  """The leading batch axes whose product divides `batch` (a small eval batch may not fill all)."""
  axes, prod = [], 1
  for a in BATCH_AXES:
    n = axis_size(mesh, a)
    if n > 1 and batch % (prod * n) == 0:
      axes.append(a)
      prod *= n
  return tuple(axes)


def initialize_distributed_from_env() -> bool:
  """Starts jax.distributed when the environment describes several processes; True if it did.

  Explicit variables win (MMSCALE_COORDINATOR=host:port, MMSCALE_NUM_PROCESSES,
  MMSCALE_PROCESS_ID); otherwise a SLURM step with more than one task is auto-detected by JAX.
  A single process is a no-op, so the same command runs on a laptop and on a cluster.
  """
  if jax.distributed.is_initialized():
    return True
  env = os.environ
  if env.get("MMSCALE_COORDINATOR"):
    try:
      n, pid = int(env["MMSCALE_NUM_PROCESSES"]), int(env["MMSCALE_PROCESS_ID"])
    except (KeyError, ValueError) as e:
      raise UserError("MMSCALE_COORDINATOR is set: MMSCALE_NUM_PROCESSES and MMSCALE_PROCESS_ID "
                      f"must be integers too ({e})") from None
    if not 0 <= pid < n:
      raise UserError(f"MMSCALE_PROCESS_ID={pid}: must be in [0, MMSCALE_NUM_PROCESSES={n})")
    if n == 1:
      return False
    jax.distributed.initialize(env["MMSCALE_COORDINATOR"], num_processes=n, process_id=pid)
    return True
  if int(env.get("SLURM_NTASKS", env.get("SLURM_NPROCS", "1"))) > 1 and "SLURM_JOB_ID" in env:
    jax.distributed.initialize()
    return True
  return False
