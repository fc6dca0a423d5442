"""A real one-node SLURM cluster on localhost for tests: munged + slurmctld + slurmd as root.

`ensure_packages()` installs Debian's slurm-wlm and munge when missing (returns a reason string if
they cannot be had); `Cluster(dir)` writes a slurm.conf under dir, starts the daemons on free ports
and stops them (by the pids it started) on close. Clients find it through SLURM_CONF.
"""

import os
import shutil
import socket
import subprocess
import time

PACKAGES = ("slurm-wlm", "munge")
BINARIES = ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "scontrol")


def ensure_packages() -> str:
  """'' when the SLURM binaries are there (installing them if needed), else why not."""
  if all(shutil.which(b) or os.path.exists(f"/usr/sbin/{b}") for b in BINARIES):
    return ""
  if os.geteuid() != 0 or not shutil.which("apt-get"):
    return "slurm-wlm/munge are not installed and apt-get as root is not available"
  env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
  try:
    subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600,
                   check=True)
    subprocess.run(["apt-get", "install", "-y", "-q", *PACKAGES], env=env, capture_output=True,
                   timeout=900, check=True)
  except (subprocess.SubprocessError, OSError) as e:
    return f"could not install {' '.join(PACKAGES)} with apt-get: {e}"
  return ""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Cluster:

  def __init__(self, directory: str, cpus: int = 2):
    self.dir = os.path.abspath(directory)
    self.host = socket.gethostname().split(".")[0]
    self.procs = []
    for sub in ("state", "spool", "log", "munge"):
      os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
    self.conf = os.path.join(self.dir, "slurm.conf")
    self.munge_socket = os.path.join(self.dir, "munge", "munge.socket")
    with open(self.conf, "w") as f:
      f.write(f"""ClusterName=mmscaletest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={self.dir}/state
SlurmdSpoolDir={self.dir}/spool
SlurmctldPidFile={self.dir}/slurmctld.pid
SlurmdPidFile={self.dir}/slurmd.pid
SlurmctldLogFile={self.dir}/log/slurmctld.log
SlurmdLogFile={self.dir}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=30
SchedulerParameters=sched_interval=1
MinJobAge=600
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
    self.env = dict(os.environ, SLURM_CONF=self.conf)

  def start(self, timeout: float = 60) -> None:
    key = os.path.join(self.dir, "munge", "munge.key")
    with open(key, "wb") as f:
      f.write(os.urandom(1024))
    os.chmod(key, 0o400)
    munged = shutil.which("munged") or "/usr/sbin/munged"
    self._spawn([munged, "--foreground", "--force", f"--socket={self.munge_socket}",
                 f"--key-file={key}", f"--pid-file={self.dir}/munge/munged.pid",
                 f"--log-file={self.dir}/log/munged.log", f"--seed-file={self.dir}/munge/seed"])
    self._wait(lambda: os.path.exists(self.munge_socket), timeout, "munged")
    self._spawn([shutil.which("slurmctld") or "/usr/sbin/slurmctld", "-D", "-c", "-i",
                 "-f", self.conf])
    self._spawn([shutil.which("slurmd") or "/usr/sbin/slurmd", "-D", "-f", self.conf,
                 "-N", self.host])
    self._wait(self._node_idle, timeout, "slurmd (node idle)")

  def _spawn(self, cmd):
    log = open(os.path.join(self.dir, "log", os.path.basename(cmd[0]) + ".out"), "ab")
    self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT))

  def _node_idle(self) -> bool:
    r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip().startswith("idle")

  def _wait(self, cond, timeout, what):
    t0 = time.time()
    while time.time() - t0 < timeout:
      for p in self.procs:
        if p.poll() is not None:
          raise RuntimeError(f"{p.args[0]} exited with {p.returncode}; logs in {self.dir}/log "
                             f"{self.logs()}")
      if cond():
        return
      time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout}s; logs in {self.dir}/log {self.logs()}")

  def logs(self) -> str:
    out = []
    for name in sorted(os.listdir(os.path.join(self.dir, "log"))):
      with open(os.path.join(self.dir, "log", name), errors="replace") as f:
        out.append(f"--- {name}\n" + f.read()[-1500:])
    return "\n".join(out)

  def run(self, *cmd) -> str:
    return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True,
                          timeout=60).stdout

  def stop(self) -> None:
    for p in reversed(self.procs):
      if p.poll() is None:
        p.terminate()
    for p in reversed(self.procs):
      try:
        p.wait(timeout=20)
      except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    self.procs = []
