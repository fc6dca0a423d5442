"""`mmscale fit` in-process: table printed, Fit JSON written, user errors as one line."""

import json

import numpy as np
import pytest

from laws_testdata import DATA, TRUE, synthetic
from mmscale import cli as top
from mmscale.errors import UserError
from mmscale.laws import cli, fit_all, read_table


def _csv(tmp_path, groups=("a",), sigma=0.003, extra=None):
  lines = ["params,tokens,loss,source,final"]
  for k, g in enumerate(groups):
    law = dict(TRUE, E=TRUE["E"] + 0.2 * k)
    for n, d, l in zip(*synthetic(law=law, sigma=sigma, seed=k)):
      lines.append(f"{float(n)!r},{float(d)!r},{float(l)!r},{g},True")
  lines += extra or []
  p = tmp_path / "records.csv"
  p.write_text("\n".join(lines) + "\n")
  return p


def test_fit_writes_json_and_prints_table(tmp_path, capsys):
  out = tmp_path / "sub" / "fit.json"
  rc = cli.main(["fit", f"--records={_csv(tmp_path)}", f"--json={out}", "--heldout=largest"])
  assert rc == 0
  res = json.loads(out.read_text())
  for key in ("E", "A", "B", "alpha", "beta", "objective", "a", "b", "G", "grad_norm", "n_points", "heldout"):
    assert key in res, key
  assert res["n_points"] == 30 and res["law"] == "chinchilla"
  assert res["alpha"] == pytest.approx(TRUE["alpha"], abs=0.05)
  assert res["a"] == pytest.approx(res["beta"] / (res["alpha"] + res["beta"]))
  printed = capsys.readouterr().out
  assert "early fusion (Shukor)" in printed and "held-out" in printed


def test_grouped_fit_with_bootstrap(tmp_path):
  out = tmp_path / "fit.json"
  rc = cli.main(["fit", f"--records={_csv(tmp_path, groups=('web', 'code'))}", f"--json={out}",
                 "--group-by=source", "--bootstrap=2", "--seed=1"])
  assert rc == 0
  res = json.loads(out.read_text())
  assert res["group_by"] == ["source"] and sorted(res["groups"]) == ["source=code", "source=web"]
  assert res["groups"]["source=code"]["E"] > res["groups"]["source=web"]["E"] + 0.1
  boot = res["groups"]["source=web"]["bootstrap"]
  assert boot["n"] == 2 and set(boot["ci95"]) >= {"alpha", "beta", "E", "a", "b"}
  # main() can run twice in one process (flags re-parsed from scratch).
  assert cli.main(["fit", f"--records={_csv(tmp_path)}"]) == 0


def test_bad_rows_rejected_through_dispatcher(tmp_path, capsys):
  path = _csv(tmp_path, extra=["1e8,2e9,nan,a,True", "1e8,-1,3.0,a,True"])
  with pytest.raises(UserError, match=r"'tokens': 1 of 32 values rejected \(1 zero or negative\)"):
    cli.main(["fit", f"--records={path}"])
  assert top.run(["mmscale", "fit", f"--records={path}"]) == 2
  err = capsys.readouterr().err
  assert err.startswith("mmscale: error: column") and err.count("\n") == 1


def test_flag_errors(tmp_path):
  with pytest.raises(UserError, match="--records"):
    cli.main(["fit"])
  with pytest.raises(UserError):
    cli.main(["fit", "--records=x.csv", "--law=kaplan"])
  with pytest.raises(UserError, match="does not exist"):
    cli.main(["fit", f"--records={tmp_path / 'none.csv'}"])


def test_single_model_size_is_a_clear_error(tmp_path):
  p = tmp_path / "one.csv"
  p.write_text("params,tokens,loss\n" + "\n".join(f"1e8,{d},{3 - i * 0.1}" for i, d in enumerate(np.geomspace(1e9, 1e11, 8))))
  with pytest.raises(UserError, match="one model size"):
    cli.main(["fit", f"--records={p}"])


@pytest.mark.slow
def test_public_api_on_epoch_csv():
  t = read_table(DATA / "epoch_chinchilla_svg_extracted_data.csv")
  t["params"], t["tokens"] = t["Model Size"], t["Training FLOP"] / (6 * t["Model Size"])
  t["flops"] = t["Training FLOP"]
  keep = np.argsort(t["loss"])[:240]
  res = fit_all({k: v[keep] for k, v in t.items()})
  assert res["objective"] <= 0.0010182740 + 1e-9
  assert res["frontier"]["c"] < 0
