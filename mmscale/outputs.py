"""Output paths checked before a command works: a file or folder it cannot write is one line at
the start, not a traceback after minutes of fitting, and the check leaves nothing behind."""

import os
import tempfile

from mmscale.errors import UserError


def _nearest_existing(path: str) -> str:
  parent = os.path.dirname(path)
  while parent and not os.path.exists(parent):
    parent = os.path.dirname(parent)
  return parent or "."


def _probe(flag: str, path: str, folder: str) -> None:
  """Creates and removes a file in `folder`: the only test that holds for root and read-only mounts."""
  if not os.path.isdir(folder):
    raise UserError(f"--{flag}={path}: {folder} is a file, not a folder")
  try:
    fd, probe = tempfile.mkstemp(prefix=".mmscale-probe-", dir=folder)
  except OSError as e:
    raise UserError(f"--{flag}={path}: cannot write into {folder} ({e.strerror or e})") from None
  os.close(fd)
  os.remove(probe)


def check_file(flag: str, path: str) -> None:
  """A file the command will (over)write, its missing parent folders created then."""
  if "://" in path:  # Remote (gs://...): epath reports its own errors there.
    return
  path = os.path.abspath(path)
  if os.path.isdir(path):
    raise UserError(f"--{flag}={path}: is a folder; give a file name")
  if os.path.exists(path) and not os.access(path, os.W_OK):
    raise UserError(f"--{flag}={path}: the file is not writable")
  _probe(flag, path, _nearest_existing(path))


def check_dir(flag: str, path: str) -> None:
  """A folder the command will create (with its parents) or write into."""
  if "://" in path:
    return
  path = os.path.abspath(path)
  if os.path.exists(path) and not os.path.isdir(path):
    raise UserError(f"--{flag}={path}: is a file; give a folder")
  _probe(flag, path, path if os.path.isdir(path) else _nearest_existing(path))
