"""Approach 3 against Besiroglu et al. (2024)'s refit of Chinchilla on Epoch AI's extracted data."""

import numpy as np
import pytest
import scipy.optimize

from mmscale.errors import UserError
from mmscale.laws import chinchilla
from mmscale.laws import derived
from mmscale.laws import lbfgs


def test_epoch_240_reproduces_published_fit(fit240):
  f = fit240
  assert f["n_points"] == 240
  assert f["objective"] <= 0.0010182740 + 1e-9
  assert f["alpha"] == pytest.approx(0.3473, abs=0.001)
  assert f["beta"] == pytest.approx(0.3672, abs=0.002)
  assert f["E"] == pytest.approx(1.8172, abs=0.001)
  assert f["A"] == pytest.approx(477.8, rel=0.02)
  assert f["B"] == pytest.approx(2143, rel=0.05)
  assert f["grad_norm"] < 1e-6  # converged for real, not stopped by a relative test


def test_epoch_240_derived(fit240):
  cf = derived.closed_form(fit240)
  assert cf["a"] == pytest.approx(0.514, abs=0.003)
  assert cf["a"] + cf["b"] == pytest.approx(1.0)
  C = 5.76e23
  ratio = derived.d_opt(fit240, C) / derived.n_opt(fit240, C)
  assert ratio == pytest.approx(17.9, abs=1.0)
  assert 6 * derived.n_opt(fit240, C) * derived.d_opt(fit240, C) == pytest.approx(C, rel=1e-9)
  # Numerical optimum per budget agrees with the closed form; the regressions recover a, b, d.
  n_num, d_num, _ = derived.numeric_optimum(fit240, C)
  assert n_num == pytest.approx(derived.n_opt(fit240, C), rel=1e-4)
  reg = derived.regressions(fit240)
  assert reg["a_reg"] == pytest.approx(cf["a"], abs=1e-4)
  assert reg["d_reg"] == pytest.approx(cf["d"], abs=1e-3)
  assert reg["c_reg"] < 0


def test_moves_away_from_hoffmann_start(epoch240):
  h = chinchilla.HOFFMANN_START
  start = chinchilla.start_from(h["A"], h["B"], h["E"], h["alpha"], h["beta"])
  f = chinchilla.fit(*epoch240, starts=start)
  assert f["objective"] <= 0.0010182740 + 1e-9
  assert f["alpha"] == pytest.approx(0.3473, abs=0.001)
  assert f["beta"] == pytest.approx(0.3672, abs=0.002)
  assert abs(f["beta"] - h["beta"]) > 0.05


def test_scipy_default_tolerance_stops_early(epoch240):
  """The documented pitfall that our polish avoids: scipy's default test is absolute below f = 1."""
  vg = chinchilla.make_objective(*epoch240)
  h = chinchilla.HOFFMANN_START
  x0 = chinchilla.start_from(h["A"], h["B"], h["E"], h["alpha"], h["beta"])[0]
  res = scipy.optimize.minimize(lambda t: tuple(v[0] for v in vg(t[None])), x0, jac=True, method="L-BFGS-B")
  assert res.fun > 0.0010182740 + 1e-9


def test_all_245_points_differ(epoch):
  f = chinchilla.fit(*epoch)
  assert f["beta"] > 0.42
  assert f["B"] > 6000


def test_gradient_matches_finite_differences(epoch240):
  vg = chinchilla.make_objective(*epoch240)
  rng = np.random.default_rng(0)
  theta = np.array([[6.0, 7.5, 0.6, 0.35, 0.37]]) + 0.05 * rng.standard_normal((3, 5))
  _, g = vg(theta)
  for k in range(5):
    h = np.zeros(5)
    h[k] = 1e-6
    fd = (vg(theta + h)[0] - vg(theta - h)[0]) / 2e-6
    np.testing.assert_allclose(g[:, k], fd, rtol=1e-4, atol=1e-10)


def test_float32_search_matches_float64_objective(epoch240):
  theta = np.array([[6.1, 7.7, 0.6, 0.35, 0.37]])
  f64 = chinchilla.make_objective(*epoch240)(theta)[0]
  f32 = chinchilla.make_objective(*epoch240, dtype=np.float32)(theta)[0]
  assert f32 == pytest.approx(f64, rel=1e-3)


def test_hoffmann_grid():
  g = chinchilla.hoffmann_grid()
  assert g.shape == (4500, 5)
  assert sorted(set(g[:, 0])) == [0, 5, 10, 15, 20, 25]
  assert sorted(set(g[:, 2])) == [-1, -0.5, 0, 0.5, 1]
  assert sorted(set(g[:, 3])) == [0, 0.5, 1, 1.5, 2]
  assert np.unique(g, axis=0).shape[0] == 4500


def test_batched_lbfgs_rosenbrock_matches_scipy():
  def vg(x, rows=None):
    a, b = x[:, 0], x[:, 1]
    f = (1 - a) ** 2 + 100 * (b - a * a) ** 2
    g = np.stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)], 1)
    return f, g

  starts = np.array([[-1.2, 1.0], [2.0, 2.0], [0.0, 0.0], [-3.0, 5.0]])
  res = lbfgs.minimize(vg, starts, gtol=1e-10, ftol=0.0, max_iter=2000)
  assert res.converged.all()
  np.testing.assert_allclose(res.x, 1.0, atol=1e-6)


def test_too_few_points_and_one_size():
  with pytest.raises(UserError, match="too few"):
    chinchilla.fit([1e8] * 3, [1e9, 2e9, 3e9], [3.0, 2.9, 2.8])
  with pytest.raises(UserError, match="one model size"):
    chinchilla.fit([1e8] * 8, np.geomspace(1e9, 1e10, 8), np.linspace(3, 2.5, 8))


def test_recovers_noise_free_synthetic_law():
  from laws_testdata import TRUE, synthetic
  f = chinchilla.fit(*synthetic(sigma=0.0))
  for k in ("alpha", "beta", "E"):
    assert f[k] == pytest.approx(TRUE[k], rel=1e-3)
  assert f["objective"] < 1e-12


def test_polish_from_an_underflowed_coefficient(monkeypatch):
  """The batched search can return a coefficient that underflowed to exactly 0 (a term the data
  does not support); the scipy polish then starts from the smallest float, not log(0) = -inf."""
  N = np.repeat(np.geomspace(1e7, 1e9, 6), 4)
  D = np.tile(np.geomspace(1e9, 1e11, 4), 6)
  L = 1.7 + 400.0 / N ** 0.34 + 900.0 / D ** 0.3
  search = chinchilla.fit_many
  monkeypatch.setattr(chinchilla, "fit_many",
                      lambda *a, **kw: [dict(search(*a, **kw)[0], B=0.0, objective=np.inf)])
  with np.errstate(divide="raise", invalid="raise"):
    f = chinchilla.fit(N, D, L)
  assert np.isfinite([f["A"], f["B"], f["E"], f["alpha"], f["beta"]]).all()
  assert np.isfinite(f["objective"]) and f["A"] == pytest.approx(400.0, rel=0.5)
