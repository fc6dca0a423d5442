"""Sparse mixture-of-experts and modality-specific feed-forward layers, expert-parallel.

MoEFeedForward: E SwiGLU experts, a softmax router, top-k token choice (top-k weights renormalised
when k > 1, Switch-style raw probability when k = 1 so the router gets a gradient). Two modes:
  dropless  tokens sorted by expert and run as one grouped matmul: jax.lax.ragged_dot, or on CPU
            (model.moe.grouped_matmul) a MegaBlocks-style block-sparse scan, since XLA:CPU's
            ragged_dot multiplies every row by every expert;
  capacity  each expert takes at most ceil(cf * L * k / E) assignments per sequence (priority: first
            choices, then position), the rest dropped and counted. Per sequence, so what is dropped
            does not depend on how the batch is sharded.
Routing decisions, losses and statistics are computed on the global (auto-sharded) arrays; only the
expert computation is manual. Under a mesh (jax.set_mesh) it runs in jax.shard_map with tokens split
over the batch axes and experts over "expert": all-to-all dispatch to the experts' devices, grouped
matmul there, all-to-all back (XLA:CPU has no ragged all-to-all, so buffers are padded to the
worst case, which keeps dropless dropless).
"""

import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import PartitionSpec as P

from mmscale import parallel
from mmscale.errors import ConfigError
from mmscale.models import layers
from mmscale.models import moe_config
from mmscale.models.config import MODALITIES, ffn_hidden

N_MODALITIES = len(MODALITIES)


def _dtype(config):
  train = config.get("train", None)
  return jnp.dtype(train.get("dtype", "float32") if train is not None else "float32")


def _expert_init(scale):
  # Fan-in over the contracted dim only; the leading expert dim is a batch of independent matrices.
  return nnx.initializers.variance_scaling(scale ** 2, "fan_in", "truncated_normal", in_axis=-2,
                                           out_axis=-1, batch_axis=(0,))


def _group_of_modality(config) -> tuple[int, ...]:
  """Routing group (index into moe_config.routing_groups) of each modality id; unlisted -> text."""
  groups = moe_config.routing_groups(config)
  return tuple(groups.index(m) if m in groups else 0 for m in MODALITIES)


class _Experts(nnx.Module):
  """Stacked SwiGLU weights [G, D, F], [G, D, F], [G, F, D] (G experts or modalities)."""

  def __init__(self, n, width, hidden, name, *, rngs, scale):
    init = _expert_init(scale)
    self.gate = layers.param(rngs, init, (n, width, hidden), (name, "embed", "mlp"))
    self.up = layers.param(rngs, init, (n, width, hidden), (name, "embed", "mlp"))
    self.down = layers.param(rngs, init, (n, hidden, width), (name, "mlp", "embed"))

  def weights(self, dtype):
    return tuple(w[...].astype(dtype) for w in (self.gate, self.up, self.down))


# -- local (per-device) expert computation -------------------------------------------------------

def _sizes(ids, n):
  return jnp.sum(ids[:, None] == jnp.arange(n, dtype=ids.dtype), axis=0, dtype=jnp.int32)


def _ragged_swiglu(x, rows, se, wg, wu, wd):
  xs = x[rows]
  sizes = _sizes(se, wg.shape[0])
  g = jax.lax.ragged_dot(xs, wg, sizes)
  u = jax.lax.ragged_dot(xs, wu, sizes)
  return jax.lax.ragged_dot(jax.nn.silu(g) * u, wd, sizes)


def block_size(rows, groups, size=0):
  """Rows per block: `size`, or (0) a power of two in [16, 128] near rows / (4 * groups).

  Each group pads to a whole number of blocks (about groups * b / 2 wasted rows, an eighth of the
  rows under this rule) while larger blocks make more efficient matmuls: on 2 shared CPU cores,
  4096 rows and 8 experts, b = 128 was the fastest, b = 64 about 7 % and b = 32 about 30 % slower
  (benchmarks/bench_moe_layer.py --block-sizes=32,64,128).
  """
  if size:
    return int(size)
  return int(min(128, max(16, 2 ** int(math.log2(max(rows // (4 * groups), 1))))))


def _block_layout(se, n, b, multiple=1):
  """Sorted group ids se [R] (n = not routed, sorted last) -> MegaBlocks layout.

  Each group's rows start a fresh block of b rows; returns the padded slot of each row (nb * b
  for rows not routed), the group of each block, and the number of blocks in use. The static
  block count ceil(R / b) + n, rounded up to a multiple of `multiple`, bounds the padded total, so
  no row is ever dropped; blocks past the used ones get group n - 1 and no rows.
  """
  r = se.shape[0]
  nb = -(-(-(-r // b) + n) // multiple) * multiple
  sizes = _sizes(se, n)
  padded = (sizes + b - 1) // b * b
  pend = jnp.cumsum(padded)
  shift = (pend - padded) - (jnp.cumsum(sizes) - sizes)  # Padded start - packed start, per group.
  routed = se < n
  slot = jnp.where(routed, jnp.arange(r) + shift[jnp.minimum(se, n - 1)], nb * b)
  bid = jnp.sum(jnp.arange(nb)[:, None] * b >= pend[None, :], axis=1, dtype=jnp.int32)
  return slot, jnp.minimum(bid, n - 1), pend[-1] // b


def _dsilu(g):
  s = jax.nn.sigmoid(g)
  return s * (1 + g * (1 - s))


def _zeros(shape, dtype, *refs):
  """Zeros that vary over the shard_map axes the refs vary over (cond branches must agree)."""
  z = jnp.zeros(shape, dtype)
  for r in refs:
    z = z + jnp.zeros_like(r, dtype=dtype).reshape(-1)[0]
  return z


BLOCKS_PER_STEP = 4  # Blocks per scan step, as one batched matmul: ~10 % faster than 1 on 2 CPU cores.


def _blocks_fwd(xb, bid, wg, wu, wd):
  """xb [S, P, b, D]: S scan steps of P blocks; bid [S, P] the expert of each block."""

  def body(_, inp):
    x, i = inp
    g = jnp.einsum("pbd,pdh->pbh", x, wg[i])
    u = jnp.einsum("pbd,pdh->pbh", x, wu[i])
    return None, (jnp.einsum("pbh,phd->pbd", jax.nn.silu(g) * u, wd[i]), g, u)

  _, (yb, g, u) = jax.lax.scan(body, None, (xb, bid))
  return yb, (xb, bid, g, u, wg, wu, wd)


def _blocks_bwd(res, dy):
  xb, bid, g, u, wg, wu, wd = res
  refs = res + (dy,)
  f32 = dict(preferred_element_type=jnp.float32)

  def body(acc, inp):
    x, i, g, u, dy = inp
    agg, agu, agd = acc
    s = jax.nn.silu(g)
    dh = jnp.einsum("pbd,phd->pbh", dy, wd[i])
    dg, du = (dh * u * _dsilu(g)).astype(x.dtype), (dh * s).astype(x.dtype)
    # Only these blocks' expert slices of the accumulators change (in place in the while loop).
    agd = agd.at[i].add(jnp.einsum("pbh,pbd->phd", s * u, dy, **f32))
    agg = agg.at[i].add(jnp.einsum("pbd,pbh->pdh", x, dg, **f32))
    agu = agu.at[i].add(jnp.einsum("pbd,pbh->pdh", x, du, **f32))
    dx = jnp.einsum("pbh,pdh->pbd", dg, wg[i]) + jnp.einsum("pbh,pdh->pbd", du, wu[i])
    return (agg, agu, agd), dx

  acc = tuple(_zeros(w.shape, jnp.float32, *refs) for w in (wg, wu, wd))
  (agg, agu, agd), dx = jax.lax.scan(body, acc, (xb, bid, g, u, dy))
  return dx, None, agg.astype(wg.dtype), agu.astype(wu.dtype), agd.astype(wd.dtype)


@jax.custom_vjp
def _blocks_swiglu_core(xb, bid, wg, wu, wd):
  return _blocks_fwd(xb, bid, wg, wu, wd)[0]


_blocks_swiglu_core.defvjp(_blocks_fwd, _blocks_bwd)


def _blocks_swiglu(x, rows, se, wg, wu, wd, *, block=0):
  """Block-sparse grouped SwiGLU: each b-row block runs only its own expert's weights.

  A scan over steps of BLOCKS_PER_STEP blocks with a hand-written backward: the automatic transpose
  of `w[i]` in a scan adds a full-size zero-padded gradient per step, while this one updates only
  the steps' expert slices. Blocks past the used ones hold only zero rows, so they add exact zeros.
  """
  n = wg.shape[0]
  b = block_size(rows.shape[0], n, block)
  p = BLOCKS_PER_STEP
  slot, bid, _ = _block_layout(se, n, b, p)
  nb = bid.shape[0]
  # Row of x behind each padded slot (x.shape[0] = padding: out of range, gathers zeros).
  src = jnp.full((nb * b,), x.shape[0], rows.dtype).at[slot].set(rows, mode="drop")
  xb = x.at[src].get(mode="fill", fill_value=0).reshape(nb // p, p, b, -1)
  # Under shard_map every float input must vary over the same mesh axes, so that each cotangent
  # from the hand-written backward has its primal's type; the automatic transpose of this add
  # then does the psum over the axes a weight was replicated on.
  vary = _zeros((), xb.dtype, xb, bid, wg, wu, wd)
  xb, wg, wu, wd = (t + vary for t in (xb, wg, wu, wd))
  yb = _blocks_swiglu_core(xb, bid.reshape(nb // p, p), wg, wu, wd).reshape(nb * b, -1)
  return yb.at[slot].get(mode="fill", fill_value=0)


def grouped_matmul(name="auto") -> str:
  """model.moe.grouped_matmul -> "blocks" | "ragged_dot"; auto picks by jax's default backend.

  XLA:CPU lowers ragged_dot to a dense product with every group (E x the expert FLOPs), so CPU
  gets the block-sparse scan. TPU has a grouped-matmul lowering. XLA:GPU uses cuDNN's grouped
  matmul for the shapes it supports and otherwise also pads to dense (openxla/xla#45999 describes
  the fallback), so check a GPU run with benchmarks/bench_moe_layer.py; the capacity-factor mode
  (model.moe.mode="capacity") is a plain batched matmul everywhere.
  """
  if name == "auto":
    return "blocks" if jax.default_backend() == "cpu" else "ragged_dot"
  if name not in moe_config.GROUPED_MATMULS[1:]:
    raise ConfigError("model.moe.grouped_matmul", name,
                      f"must be one of {', '.join(map(repr, moe_config.GROUPED_MATMULS))}")
  return name


def _grouped_swiglu(x, rows, se, ws, grouped, block):
  """FFN_se[i](x[rows[i]]) for group ids se sorted ascending (ws[0].shape[0] = not routed: 0)."""
  if grouped == "blocks":
    return _blocks_swiglu(x, rows, se, *ws, block=block)
  return _ragged_swiglu(x, rows, se, *ws)


def _dropless(x, idx, w, keep, ws, ep, axis, grouped, block):
  """x [B,L,D]; idx/w/keep [B,L,k] (global expert ids); ws local expert weights [E_loc, ...]."""
  b, l, d = x.shape
  k = idx.shape[-1]
  e_loc = ws[0].shape[0]
  x2 = x.reshape(b * l, d)
  eid = jnp.where(keep, idx, e_loc * ep).reshape(-1)  # Not routed -> sentinel, sorted last.
  order = jnp.argsort(eid, stable=True)
  se, tok = eid[order], order // k
  if ep == 1:
    ys = _grouped_swiglu(x2, tok, se, ws, grouped, block)
  else:
    a = se.shape[0]
    dest = se // e_loc  # Device (along "expert") holding each assignment's expert; ep = none.
    per_dest = _sizes(dest, ep)
    rank = jnp.arange(a) - (jnp.cumsum(per_dest) - per_dest)[jnp.minimum(dest, ep - 1)]
    # Worst case every assignment goes to one device: `a` rows per destination.
    send = jnp.zeros((ep, a, d), x2.dtype).at[dest, rank].set(x2[tok], mode="drop")
    send_e = jnp.full((ep, a), e_loc, se.dtype).at[dest, rank].set(se % e_loc, mode="drop")
    recv = jax.lax.all_to_all(send, axis, 0, 0, tiled=True).reshape(ep * a, d)
    recv_e = jax.lax.all_to_all(send_e, axis, 0, 0, tiled=True).reshape(ep * a)
    o2 = jnp.argsort(recv_e, stable=True)
    yr = _grouped_swiglu(recv, o2, recv_e[o2], ws, grouped, block)
    yr = jnp.zeros_like(yr).at[o2].set(yr).reshape(ep, a, d)
    back = jax.lax.all_to_all(yr, axis, 0, 0, tiled=True)
    ys = back.at[dest, rank].get(mode="fill", fill_value=0)
  ws_sorted = w.reshape(-1)[order].astype(ys.dtype)
  y = jnp.zeros((b * l, d), ys.dtype).at[tok].add(ys * ws_sorted[:, None])
  return y.reshape(b, l, d)


def _capacity(x, idx, w, keep, pos, ws, ep, axis, cap):
  """Fixed [B, E, C, D] expert buffers; the expert dim goes over `axis` with a dense all-to-all."""
  b, l, d = x.shape
  k = idx.shape[-1]
  e_loc = ws[0].shape[0]
  e = e_loc * ep
  eid = jnp.where(keep, idx, e)
  bi = jnp.broadcast_to(jnp.arange(b)[:, None, None], idx.shape)
  xk = jnp.broadcast_to(x[:, :, None, :], (b, l, k, d))
  buf = jnp.zeros((b, e, cap, d), x.dtype).at[bi, eid, pos].set(xk, mode="drop")
  buf = buf.reshape(b, ep, e_loc, cap, d).swapaxes(0, 1)
  if ep > 1:
    buf = jax.lax.all_to_all(buf, axis, 0, 0, tiled=True)  # [source, B, E_loc, C, D]
  wg, wu, wd = ws
  h = jax.nn.silu(jnp.einsum("sbecd,edf->sbecf", buf, wg)) * jnp.einsum("sbecd,edf->sbecf", buf, wu)
  out = jnp.einsum("sbecf,efd->sbecd", h, wd)
  if ep > 1:
    out = jax.lax.all_to_all(out, axis, 0, 0, tiled=True)
  out = out.swapaxes(0, 1).reshape(b, e, cap, d)
  ys = out.at[bi, eid, pos].get(mode="fill", fill_value=0)  # [B, L, k, D]
  return jnp.sum(ys * w[..., None].astype(ys.dtype), axis=2)


def _local(x, idx, w, keep, pos, *ws, mode, ep, axis, replicated, cap, grouped, block):
  if replicated:
    # Tokens are the same on every expert device (the batch is too small to split over it): each
    # device runs only its own experts, and the partial outputs are summed.
    e_loc = ws[0].shape[0]
    first = jax.lax.axis_index(axis) * e_loc
    keep = keep & (idx >= first) & (idx < first + e_loc)
    idx = idx - first
    ep_, axis_ = 1, None
  else:
    ep_, axis_ = ep, axis
  if mode == "dropless":
    y = _dropless(x, idx, w, keep, ws, ep_, axis_, grouped, block)
  else:
    y = _capacity(x, idx, w, keep, pos, ws, ep_, axis_, cap)
  return jax.lax.psum(y, axis) if replicated else y


def expert_ffn(x, idx, w, keep, pos, ws, *, mode="dropless", cap=0, shard_experts=True,
               grouped="auto", block=0):
  """Runs the routed assignments through the experts: y[t] = sum_j w[t,j] * FFN_idx[t,j](x[t]).

  Without a mesh (or on one device) this is the local computation. Under an active mesh the
  tokens are split over the batch axes and, when `shard_experts` and the expert axis is > 1, the
  experts over "expert".
  """
  kw = dict(mode=mode, cap=cap, grouped=grouped_matmul(grouped), block=block)
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or mesh.size == 1:
    return _local(x, idx, w, keep, pos, *ws, ep=1, axis=None, replicated=False, **kw)
  n_exp = parallel.axis_size(mesh, "expert")
  ep = n_exp if shard_experts and ws[0].shape[0] % n_exp == 0 else 1
  bax = parallel.batch_axes(mesh, x.shape[0])
  replicated = ep > 1 and "expert" not in bax
  tok = P(bax or None)
  wspec = P("expert") if ep > 1 else P()
  fn = functools.partial(_local, ep=ep, axis="expert", replicated=replicated, **kw)
  return jax.shard_map(fn, mesh=mesh, in_specs=(tok,) * 5 + (wspec,) * 3, out_specs=tok)(
      x, idx, w, keep, pos, *ws)


# -- routing ------------------------------------------------------------------------------------

def route(logits, valid, modality, top_k, *, mode="dropless", capacity_factor=1.0):
  """Top-k routing and its statistics from router logits [B, L, E] (masked logits = -inf).

  Returns (idx, w, keep, pos, cap, aux): aux has lb_loss (Switch: E * sum_e f_e P_e, f_e the share
  of valid assignments sent to e, P_e the mean router probability), z_loss (mean squared
  logsumexp), dropped (valid assignments over capacity) and counts [E, n_modalities].
  """
  b, l, e = logits.shape
  logits = logits.astype(jnp.float32)
  probs = jax.nn.softmax(logits, axis=-1)
  top_p, idx = jax.lax.top_k(probs, top_k)
  w = top_p / jnp.sum(top_p, axis=-1, keepdims=True) if top_k > 1 else top_p
  v = valid.astype(jnp.float32)
  n = jnp.maximum(jnp.sum(v), 1.0)
  onehot = jax.nn.one_hot(idx, e, dtype=jnp.float32) * v[..., None, None]  # [B, L, k, E]
  frac = jnp.sum(onehot, axis=(0, 1, 2)) / (n * top_k)
  mean_p = jnp.sum(probs * v[..., None], axis=(0, 1)) / n
  lb = e * jnp.sum(frac * mean_p)
  z = jnp.sum(jax.nn.logsumexp(logits, axis=-1) ** 2 * v) / n
  mod = jax.nn.one_hot(modality, N_MODALITIES, dtype=jnp.float32)
  counts = jnp.einsum("blke,blm->em", onehot, mod)
  keep = jnp.broadcast_to(valid[..., None], idx.shape)
  cap = 0
  if mode == "capacity":
    cap = max(1, math.ceil(capacity_factor * l * top_k / e))
    # Slot of each assignment in its expert's buffer, first choices before second ones.
    order = jnp.swapaxes(onehot, 1, 2).reshape(b, top_k * l, e)
    slot = jnp.cumsum(order, axis=1) - order
    pos = jnp.sum(slot * order, axis=-1).reshape(b, top_k, l).swapaxes(1, 2).astype(jnp.int32)
    keep = keep & (pos < cap)
  else:
    pos = jnp.zeros(idx.shape, jnp.int32)
  dropped = jnp.sum(valid[..., None] & ~keep, dtype=jnp.int32)
  aux = {"lb_loss": lb, "z_loss": z, "dropped": dropped, "counts": counts}
  return idx, w, keep, pos, cap, aux


class MoEFeedForward(nnx.Module):
  """Routed SwiGLU experts (+ optional shared expert). __call__(x, modality, valid) -> (y, aux)."""

  def __init__(self, config, rngs, *, width=None, hidden=None, dtype=None):
    m, c = config.model, config.model.moe
    width = int(width or m.width)
    hidden = int(hidden or c.expert_hidden or ffn_hidden(m.width, m.ffn_hidden, m.ffn_multiple))
    scale = float(m.get("init_scale", 1.0))
    self.dtype = jnp.dtype(dtype) if dtype is not None else _dtype(config)
    self.n_experts, self.top_k = int(c.experts), int(c.top_k)
    self.mode, self.capacity_factor = str(c.mode), float(c.capacity_factor)
    self.grouped = dict(grouped=str(c.get("grouped_matmul", "auto")),
                        block=int(c.get("block_size", 0)))
    self.router = layers.param(rngs, layers.fan_in_init(scale, 1), (width, self.n_experts),
                               ("embed", None))
    self.experts = _Experts(self.n_experts, width, hidden, "expert", rngs=rngs, scale=scale)
    self.shared = (layers.SwiGLU(width, hidden, rngs=rngs, scale=scale, dtype=self.dtype)
                   if c.shared_expert else None)
    self.aware = c.routing == "aware"
    if self.aware:
      n_groups = len(moe_config.routing_groups(config))
      self.group_of_modality = _group_of_modality(config)
      self.group_of_expert = tuple(i * n_groups // self.n_experts for i in range(self.n_experts))

  def router_logits(self, x, modality):
    logits = jnp.einsum("bld,de->ble", x.astype(jnp.float32), self.router[...])
    if self.aware:
      group = jnp.asarray(self.group_of_modality, jnp.int32)[modality]
      allowed = group[..., None] == jnp.asarray(self.group_of_expert, jnp.int32)
      logits = jnp.where(allowed, logits, -jnp.inf)
    return logits

  def __call__(self, x, modality, valid):
    idx, w, keep, pos, cap, aux = route(self.router_logits(x, modality), valid, modality,
                                        self.top_k, mode=self.mode,
                                        capacity_factor=self.capacity_factor)
    h = x.astype(self.dtype)
    y = expert_ffn(h, idx, w, keep, pos, self.experts.weights(self.dtype), mode=self.mode, cap=cap,
                   **self.grouped)
    if self.shared is not None:
      y = y + self.shared(h)
    return y, aux


class ModalityFeedForward(nnx.Module):
  """One SwiGLU FFN per modality group (text + model.modalities): hard routing by modality id."""

  def __init__(self, config, rngs, *, width=None, hidden=None, dtype=None):
    m = config.model
    width = int(width or m.width)
    hidden = int(hidden or ffn_hidden(m.width, m.ffn_hidden, m.ffn_multiple))
    scale = float(m.get("init_scale", 1.0))
    self.dtype = jnp.dtype(dtype) if dtype is not None else _dtype(config)
    self.group_of_modality = _group_of_modality(config)
    n = len(moe_config.routing_groups(config))
    c = m.get("moe", None) or {}
    self.grouped = dict(grouped=str(c.get("grouped_matmul", "auto")),
                        block=int(c.get("block_size", 0)))
    self.ffns = _Experts(n, width, hidden, None, rngs=rngs, scale=scale)

  def __call__(self, x, modality, valid):
    idx = jnp.asarray(self.group_of_modality, jnp.int32)[modality][..., None]
    w = jnp.ones(idx.shape, jnp.float32)
    keep = valid[..., None]
    y = expert_ffn(x.astype(self.dtype), idx, w, keep, jnp.zeros_like(idx),
                   self.ffns.weights(self.dtype), shard_experts=False, **self.grouped)
    return y, {}
