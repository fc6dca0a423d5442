"""Registry: deterministic ids, trunks and branches, status from disk, the manifest."""

import json
import os

import pytest

from mmscale import config as config_lib
from mmscale.errors import UserError
from mmscale.sweep import plan, registry

from sweep_helpers import load_fake_study


def test_run_ids_are_deterministic_and_match_the_trainer():
  a, b = load_fake_study(), load_fake_study()
  assert [s.run_id for s in a.specs] == [s.run_id for s in b.specs]
  assert len({s.run_id for s in a.specs}) == len(a.specs) == 6
  for s in a.specs:
    resolved = config_lib.resolve(__import__("ml_collections").ConfigDict(s.config))
    assert config_lib.run_id(resolved) == s.run_id  # The id the trainer writes in its records.
    assert s.run_id.startswith(f"fake_{s.tags['size']}_C")
  other = load_fake_study("axes")
  assert not {s.run_id for s in a.specs} & {s.run_id for s in other.specs}


def test_cooldown_trunks_and_branches():
  st = load_fake_study("cooldown")
  trunks = {s.run_id: s for s in st.specs if s.kind == "trunk"}
  branches = [s for s in st.specs if s.kind == "branch"]
  assert len(trunks) == 2 and len(branches) == 6
  for b in branches:
    t = trunks[b.depends_on]
    frac = b.config["train"]["cooldown_fraction"]
    assert b.depends_step == registry.branch_point(b.steps, frac)
    assert b.config["train"]["init_from"] == t.run_id
    assert b.config["train"]["init_step"] == b.depends_step
    assert b.config["train"]["schedule"] == "wsd"
    assert b.depends_step in t.config["train"]["save_steps"]
    assert b.own_flops == pytest.approx(b.flops * (b.steps - b.depends_step) / b.steps)
  for t in trunks.values():
    mine = [b for b in branches if b.depends_on == t.run_id]
    assert t.steps == max(b.depends_step for b in mine)
    assert t.config["train"]["schedule"] == "constant"
  sv = plan.savings(st.specs)
  independent = load_fake_study()
  assert sv["independent"] == pytest.approx(sum(s.flops for s in independent.specs))
  assert sv["planned"] == pytest.approx(sum(t.flops for t in trunks.values())
                                        + sum(b.own_flops for b in branches))
  assert 0 < sv["fraction"] < 1
  text = plan.format_plan(st)
  assert "cool-down branches save" in text and all(s.run_id in text for s in st.specs)


def test_status_from_disk(tmp_path):
  st = load_fake_study()
  root = str(tmp_path)
  registry.write_specs(root, st.specs)
  r = st.specs[0].run_id
  d = registry.run_dir(root, r)
  assert registry.status(root, r) == "pending"
  registry.write_json_atomic(os.path.join(d, "summary.json"), {"status": "preempted"})
  assert registry.status(root, r) == "preempted"
  registry.write_json_atomic(os.path.join(d, "summary.json"), {"status": "failed"})
  assert registry.status(root, r) == "failed"
  registry.write_json_atomic(os.path.join(d, "summary.json"), {"status": "done"})
  assert registry.status(root, r) == "done"
  assert registry.list_runs(root) == sorted(s.run_id for s in st.specs)
  # A spec already on disk is never rewritten.
  before = os.stat(os.path.join(d, "run.json")).st_mtime_ns
  registry.write_specs(root, st.specs)
  assert os.stat(os.path.join(d, "run.json")).st_mtime_ns == before
  m = plan.write_manifest(root, "x/fake_study.py", st.specs)
  assert json.load(open(m))["run_ids"] == [s.run_id for s in plan.ordered(st.specs)]


def test_unwritable_root(tmp_path):
  f = tmp_path / "file"
  f.write_text("x")
  with pytest.raises(UserError, match="not writable"):
    registry.write_specs(str(f / "root"), load_fake_study().specs)
