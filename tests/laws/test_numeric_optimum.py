"""derived.numeric_optimum minimises the contract's law (mmscale.contract.chinchilla_loss) along a
budget: its loss is that function's value, and its optimum is the closed form's."""

import numpy as np
import pytest

from mmscale import contract
from mmscale.laws import derived

FIT = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al. 2022.


def test_the_loss_is_the_contracts_law_at_the_optimum():
  C = np.logspace(18, 24, 7)
  n, d, loss = derived.numeric_optimum(FIT, C)
  np.testing.assert_array_equal(loss, contract.chinchilla_loss(n, d, FIT["E"], FIT["A"], FIT["B"],
                                                               FIT["alpha"], FIT["beta"]))
  np.testing.assert_allclose(6 * n * d, C, rtol=1e-15)
  np.testing.assert_allclose(n, derived.n_opt(FIT, C), rtol=1e-12)  # Hoffmann App. D.2.
  np.testing.assert_allclose(d, derived.d_opt(FIT, C), rtol=1e-12)


def test_a_changed_law_moves_the_loss(monkeypatch):
  # The loss comes from contract.chinchilla_loss, not from a copy of the formula.
  calls = []
  law = contract.chinchilla_loss
  monkeypatch.setattr(contract, "chinchilla_loss", lambda *a: calls.append(a) or law(*a) + 1.0)
  n, d, loss = derived.numeric_optimum(FIT, 1e21)
  assert len(calls) == 1 and loss == pytest.approx(law(n, d, 1.69, 406.4, 410.7, 0.34, 0.28) + 1.0)


def test_scalar_and_other_flops_per_token():
  n, d, loss = derived.numeric_optimum(FIT, 1e21, flops_per_param_token=8.0)
  assert isinstance(n, float) and isinstance(loss, float)
  assert 8 * n * d == pytest.approx(1e21, rel=1e-15)
  # On the budget the optimum is the minimum: nudging N either way raises the loss.
  for f in (0.99, 1.01):
    m = n * f
    assert contract.chinchilla_loss(m, 1e21 / (8 * m), *FIT.values()) > loss
