"""The house is one-way: config -> data/models -> train -> sweep/launch -> laws -> report.

Reads every import statement of mmscale/ and launch/ (top-level and function-local alike, by
parsing the source, so a lazy import cannot hide a backward edge) and checks that no package imports
one of a later stage, and that the module graph has no cycle.
"""

import ast
import collections
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Rank of each unit; a module may import only units of a lower rank or its own unit. Units are
# packages (mmscale.data) or top-level modules (mmscale.config). data and models are siblings: the
# model's dimensions take the vocabulary size as an input instead of reading the tokenizer.
RANKS = {
    "mmscale": 0, "mmscale.errors": 0, "mmscale.contract": 0, "mmscale.validation": 1,
    "mmscale.config_file": 1, "mmscale.outputs": 1, "mmscale.allocator": 1,
    "mmscale.flagparse": 2, "mmscale.parallel": 2,
    "mmscale.data": 3, "mmscale.models": 3,
    # The LR schedules are a choice of config.train: its validator reads their registry.
    "mmscale.train.schedule": 3,
    "mmscale.config": 4,
    # The run config cut into frozen stage configs: reads config, builds the model from its view.
    "mmscale.stages": 4.5,
    "mmscale.flops": 5,
    "mmscale.train": 6,
    "mmscale.sweep": 7, "launch": 8,
    "mmscale.laws": 9,
    "mmscale.report": 10,
    # The commands: each `mmscale <command>` drives its stage (and may read the run config).
    "mmscale.data.cli": 11, "mmscale.train.cli": 11, "mmscale.sweep.cli": 11,
    "mmscale.laws.cli": 11, "mmscale.report.cli": 11,
    "mmscale.cli": 12, "mmscale.demo": 13, "mmscale.__main__": 14,
}


def _modules():
  mods = {}
  for top in ("mmscale", "launch"):
    for d, _, files in os.walk(os.path.join(REPO, top)):
      for f in files:
        if f.endswith(".py"):
          path = os.path.join(d, f)
          name = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
          mods[name.removesuffix(".__init__")] = path
  return mods


def _imports(name, path, mods):
  """Every mmscale/launch module `name` imports, wherever the statement sits."""
  is_pkg = path.endswith("__init__.py")
  out = set()
  for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
    targets = []
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = name.split(".")[:len(name.split(".")) - node.level + is_pkg]
        base = ".".join(parts + ([node.module] if node.module else []))
      subs = [f"{base}.{a.name}" for a in node.names]
      # `from pkg import module` depends on the module, not on pkg/__init__.py's contents.
      targets = subs if all(t in mods for t in subs) else [base] + subs
    for t in targets:
      while t and t not in mods:
        t = t.rpartition(".")[0]
      if t and t != name:
        out.add(t)
  return out


def _unit(module):
  for cut in range(module.count(".") + 1, 0, -1):
    unit = ".".join(module.split(".")[:cut])
    if unit in RANKS:
      return unit
  raise AssertionError(f"{module} belongs to no unit of RANKS: add it where it belongs")


def _graph():
  mods = _modules()
  return {m: _imports(m, p, mods) for m, p in mods.items()}


def test_every_module_has_a_place():
  for m in _graph():
    _unit(m)


def test_no_package_imports_a_later_stage():
  bad = []
  for m, deps in _graph().items():
    for d in deps:
      a, b = _unit(m), _unit(d)
      if a == b:
        continue
      if RANKS[b] >= RANKS[a]:  # Siblings of one rank (data, models) stay apart too.
        bad.append(f"{m} -> {d}")
  assert not bad, "backward or sideways imports:\n" + "\n".join(sorted(bad))


def test_module_graph_has_no_cycle():
  graph = _graph()
  color = collections.defaultdict(int)  # 0 new, 1 on the stack, 2 done
  stack = []

  def visit(m):
    color[m] = 1
    stack.append(m)
    for d in sorted(graph.get(m, ())):
      if color[d] == 1:
        cycle = stack[stack.index(d):] + [d]
        raise AssertionError("import cycle: " + " -> ".join(cycle))
      if color[d] == 0:
        visit(d)
    stack.pop()
    color[m] = 2

  for m in sorted(graph):
    if color[m] == 0:
      visit(m)


def test_the_checker_sees_function_local_imports(tmp_path):
  src = tmp_path / "m.py"
  src.write_text("def f():\n  from mmscale.report import build\n")
  mods = {"mmscale.x": str(src), "mmscale.report.build": "", "mmscale.report": ""}
  assert _imports("mmscale.x", str(src), mods) == {"mmscale.report.build"}
