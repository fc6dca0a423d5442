"""Huber-on-log-loss fits of any law written as log L = f(theta, inputs) in jax.numpy.

Used by the laws beyond Chinchilla (interaction, sparsity). JAX gives the gradients; the fit runs in
float64 under a local `jax.enable_x64` context, so the rest of the process keeps its float32 default.
Same recipe as Approach 3: a grid of starts minimised together (lbfgs.minimize), the best polished
with scipy at tight tolerances, the gradient norm reported.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from mmscale.errors import UserError
from mmscale.laws import chinchilla
from mmscale.laws import lbfgs


POLISH_STEPS = 2000


def huber(r, delta):
  a = jnp.abs(r)
  return jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def grid(**axes) -> tuple[tuple[str, ...], np.ndarray]:
  """Cartesian product of per-parameter start values -> (names, starts [S, k])."""
  names = tuple(axes)
  return names, np.array(list(itertools.product(*axes.values())), np.float64)


def fit(log_law, names, starts, inputs, loss, delta=1e-3, n_polish=4, what="law") -> dict:
  """Minimises sum_i Huber(log_law(theta, inputs)_i - log loss_i); returns params by name + objective."""
  loss = np.asarray(loss, np.float64)
  if loss.size <= len(names):
    raise UserError(f"{what}: {loss.size} points are too few to fit {len(names)} parameters")
  with jax.enable_x64(True):
    x = {k: jnp.asarray(v, jnp.float64) for k, v in inputs.items()}
    ll = jnp.log(jnp.asarray(loss))

    def objective(theta):
      return jnp.sum(huber(log_law(theta, x) - ll, delta))

    batched = jax.jit(jax.vmap(jax.value_and_grad(objective)))
    n_starts = starts.shape[0]

    def vg(theta, rows=None):
      # Pad to the full batch so the compiled shape never changes as starts leave the active set.
      pad = np.zeros((n_starts, theta.shape[1]))
      pad[: theta.shape[0]] = theta
      pad[theta.shape[0]:] = starts[0]
      f, g = batched(jnp.asarray(pad))
      f, g = np.asarray(f)[: theta.shape[0]], np.asarray(g)[: theta.shape[0]]
      return np.where(np.isfinite(f), f, np.inf), np.nan_to_num(g)

    single = jax.jit(jax.value_and_grad(objective))

    def vg1(theta, rows=None):
      # One point: the polish would otherwise evaluate the whole padded batch of starts per step
      # (an interaction law on a ridge took 220 CPU-s, all of it in up to 4 x 20,000 such steps).
      f, g = single(jnp.asarray(theta[0]))
      return np.array([float(f)]) if np.isfinite(f) else np.array([np.inf]), np.nan_to_num(np.asarray(g))[None]

    batch = lbfgs.minimize(vg, starts, gtol=1e-8, ftol=1e-12)
    best = None
    for i in chinchilla.distinct(batch.x, batch.f, n_polish):
      # A well-posed law converges in a few hundred steps; on a ridge (thin data) the polish crawls
      # along it for tens of thousands without changing the verdict, so it stops at POLISH_STEPS.
      theta, f, g, _ = chinchilla.polish(vg1, batch.x[i], maxiter=POLISH_STEPS)
      if not f <= batch.f[i]:
        theta, f, g = batch.x[i], float(batch.f[i]), batch.g[i]
      if best is None or f < best[1]:
        best = (theta, f, g)
  if best is None:
    raise UserError(f"{what}: the objective is not finite at any start")
  theta, f, g = best
  out = {k: float(v) for k, v in zip(names, theta)}
  out.update({"objective": float(f), "grad_norm": float(np.linalg.norm(g)), "n_points": int(loss.size)})
  return out
