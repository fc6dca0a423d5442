"""Opens the report in headless Chromium: the page renders and every figure loads (offline)."""

import re
import subprocess

import numpy as np
import pytest
from PIL import Image

# Runs after the page's load event: marks how many <img> decoded to a non-empty picture.
_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
  const bad = imgs.filter(i => !ok.includes(i)).map(i => i.getAttribute('src'));
  const el = document.createElement('div');
  el.id = 'probe';
  el.textContent = `IMAGES ${ok.length}/${imgs.length} BAD[${bad.join(',')}] ` +
    `H2 ${document.querySelectorAll('h2').length} WIDTH ${document.body.scrollWidth}`;
  document.body.appendChild(el);
});
</script>"""


def _chromium(binary, profile, *args):
  cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args]
  return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_index_renders_and_every_figure_loads(full_report, chromium, tmp_path):
  out, _ = full_report
  index = (out / "index.html").read_text()
  n_imgs = len(re.findall(r"<img ", index))
  assert n_imgs >= 10
  # The probe page sits beside index.html so the figures' relative paths resolve the same way.
  probe = out / "_probe.html"
  probe.write_text(index.replace("</body>", _PROBE + "</body>"))
  res = _chromium(chromium, tmp_path / "profile1", "--dump-dom", probe.as_uri())
  m = re.search(r"IMAGES (\d+)/(\d+) BAD\[([^\]]*)\] H2 (\d+) WIDTH (\d+)", res.stdout)
  assert m, f"no probe in the DOM; chromium said: {res.stderr[-2000:]}"
  ok, total, bad, n_h2, width = m.groups()
  assert int(total) == n_imgs and int(ok) == n_imgs, f"figures that did not load: {bad}"
  assert int(n_h2) == index.count("<h2>") and int(width) > 0
  # And it paints: a screenshot of index.html itself is not a blank page.
  shot = tmp_path / "shot.png"
  res = _chromium(chromium, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,2000",
                  (out / "index.html").as_uri())
  assert shot.exists(), res.stderr[-2000:]
  pixels = np.asarray(Image.open(shot).convert("L"))
  assert pixels.std() > 10  # text and figures, not one colour
