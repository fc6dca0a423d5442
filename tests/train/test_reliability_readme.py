"""Every test the README's "Reliability" section cites exists, so its promises stay checked."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _section() -> str:
  with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
    text = f.read()
  return text.split("\n## Reliability\n", 1)[1].split("\n## ", 1)[0]


def test_every_cited_test_exists():
  cited, last_file = [], None
  for ref in re.findall(r"`((?:tests/[\w/]+\.py)?(?:::\w+)?)`", _section()):
    path, _, name = ref.partition("::")
    last_file = path or last_file  # `::name` continues the file cited before it.
    cited.append((last_file, name))
  assert len(cited) >= 12
  for path, name in cited:
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
      source = f.read()
    if name:
      assert re.search(rf"^def {name}\(", source, re.M), f"README cites {path}::{name}, not there"
