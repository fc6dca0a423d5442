"""Reading tables and rejecting bad input with a count and a reason."""

import numpy as np
import pytest

from mmscale.errors import UserError
from mmscale.laws import table as tbl


def _write(tmp_path, text):
  p = tmp_path / "t.csv"
  p.write_text(text)
  return p


def test_read_table_types(tmp_path):
  t = tbl.read_table(_write(tmp_path, "params,tokens,loss,source\n1e8,2e9,3.1,web\n2e8,4e9,,code\n"))
  assert t["params"].dtype == np.float64 and t["source"].dtype.kind == "U"
  assert np.isnan(t["loss"][1])
  assert t["source"].tolist() == ["web", "code"]


@pytest.mark.parametrize("values,reason", [
    ("nan", "1 NaN"), ("inf", "1 infinite"), ("0", "1 zero or negative"), ("-2", "1 zero or negative")])
def test_bad_loss_rejected_with_count_and_reason(values, reason):
  t = {"params": np.array([1e8, 2e8, 3e8]), "tokens": np.array([1e9, 2e9, 3e9]),
       "loss": np.array([3.0, float(values), 2.5])}
  with pytest.raises(UserError, match=rf"'loss': 1 of 3 values rejected \({reason}\); first at data row 2"):
    tbl.require(t, ("params", "tokens", "loss"))


def test_several_reasons_counted():
  t = {"params": np.array([1e8, -1, np.nan, np.inf, 0.0])}
  with pytest.raises(UserError, match=r"4 of 5 values rejected \(1 NaN, 1 infinite, 2 zero or negative\)"):
    tbl.require(t, ("params",))


def test_missing_and_non_numeric_columns():
  with pytest.raises(UserError, match="needs column 'tokens'"):
    tbl.require({"params": np.ones(3)}, ("params", "tokens"))
  with pytest.raises(UserError, match="not numeric"):
    tbl.require({"params": np.array(["a", "b"])}, ("params",))


def test_missing_file_and_ragged_rows(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    tbl.read_table(tmp_path / "nope.csv")
  with pytest.raises(UserError, match="rows have"):
    tbl.read_table(_write(tmp_path, "a,b\n1,2\n3\n"))


def test_groups_and_final_rows():
  t = {"source": np.array(["a", "b", "a"]), "size": np.array([1.0, 2.0, 1.0]),
       "final": np.array(["True", "False", "true"]), "loss": np.array([1.0, 2.0, 3.0])}
  g = tbl.groups(t, ["source", "size"])
  assert sorted(g) == ["source=a,size=1", "source=b,size=2"]
  assert g["source=a,size=1"]["loss"].tolist() == [1.0, 3.0]
  assert tbl.final_rows(t)["loss"].tolist() == [1.0, 3.0]
  with pytest.raises(UserError, match="not in the table"):
    tbl.groups(t, ["fusion"])


def test_compute_prefers_flops_column():
  t = {"params": np.array([2.0]), "tokens": np.array([3.0])}
  assert tbl.compute(t)[0] == 36.0
  t["flops"] = np.array([40.0])
  assert tbl.compute(t)[0] == 40.0


def test_average_sources_is_the_mean_per_run_and_step():
  from mmscale.laws import table as tbl
  t = tbl.from_rows(["run_id", "step", "source", "params", "tokens", "loss"], [
      ["a", "10", "x", "100", "1000", "3.0"], ["a", "10", "y", "100", "1000", "5.0"],
      ["a", "20", "x", "100", "2000", "2.0"], ["a", "20", "y", "100", "2000", "4.0"],
      ["b", "10", "x", "200", "1000", "2.5"], ["b", "10", "y", "200", "1000", "3.5"]])
  avg = tbl.average_sources(t)
  assert avg["run_id"].tolist() == ["a", "a", "b"]
  assert avg["loss"].tolist() == [4.0, 3.0, 3.0]
  assert avg["tokens"].tolist() == [1000.0, 2000.0, 1000.0]
  single = tbl.subset(t, t["source"] == "x")
  assert tbl.average_sources(single) is single
