"""Expert-parallel dispatch: routed assignments to the experts' devices and back.

Under a mesh (jax.set_mesh) the expert computation runs in jax.shard_map with tokens split over
the batch axes and experts over "expert": all-to-all dispatch, the grouped matmul there
(moe_kernels), all-to-all back. XLA:CPU has no ragged all-to-all, so buffers are padded to the
worst case, which keeps dropless dropless. Two modes: dropless (every assignment) and capacity
(each expert takes at most `cap` assignments per sequence, the rest dropped).
"""

import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from mmscale import parallel
from mmscale.models.moe_kernels import group_sizes, grouped_matmul, grouped_swiglu


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
    ys = grouped_swiglu(x2, tok, se, ws, grouped, block)
  else:
    a = se.shape[0]
    dest = se // e_loc  # Device (along "expert") holding each assignment's expert; ep = none.
    per_dest = group_sizes(dest, ep)
    rank = jnp.arange(a) - (jnp.cumsum(per_dest) - per_dest)[jnp.minimum(dest, ep - 1)]
    # Worst case every assignment goes to one device: `a` rows per destination.
    send = jnp.zeros((ep, a, d), x2.dtype).at[dest, rank].set(x2[tok], mode="drop")
    send_e = jnp.full((ep, a), e_loc, se.dtype).at[dest, rank].set(se % e_loc, mode="drop")
    recv = jax.lax.all_to_all(send, axis, 0, 0, tiled=True).reshape(ep * a, d)
    recv_e = jax.lax.all_to_all(send_e, axis, 0, 0, tiled=True).reshape(ep * a)
    o2 = jnp.argsort(recv_e, stable=True)
    yr = grouped_swiglu(recv, o2, recv_e[o2], ws, grouped, block)
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


# model.moe.mode -> how the routed assignments reach their experts, called as
# (x, idx, w, keep, pos, ws, ep, axis, cap, grouped, block); config.model.moe's validator reads it.
MODES = {
    "dropless": lambda x, idx, w, keep, pos, ws, ep, axis, cap, grouped, block: _dropless(
        x, idx, w, keep, ws, ep, axis, grouped, block),
    "capacity": lambda x, idx, w, keep, pos, ws, ep, axis, cap, grouped, block: _capacity(
        x, idx, w, keep, pos, ws, ep, axis, cap),
}


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
  y = MODES[mode](x, idx, w, keep, pos, ws, ep_, axis_, cap, grouped, block)
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
