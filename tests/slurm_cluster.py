"""A throwaway single-node Slurm cluster for tests: munged + slurmctld + slurmd on loopback, in a temporary folder.

The daemons come from the Debian packages ``slurmctld slurmd munge slurm-client`` (``/usr/sbin`` or ``PATH``) and run
in the foreground as children of the test process, on two free TCP ports, with their own munge socket and key, so they
never meet a site's Slurm or another test cluster. slurmd must run as root here; elsewhere the tests skip and say why
(:func:`slurm_unavailable_reason`). There is no slurmdbd, so ``sacct`` does not work: wait on result files instead.

Clients (``sbatch``, ``squeue``, ``scancel``, ``sinfo``, submitit) reach the cluster through ``SLURM_CONF``
(:attr:`SlurmCluster.env`).

Run ``python tests/slurm_cluster.py`` to start one by hand; it prints the ``SLURM_CONF`` and stops on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["DAEMONS", "CLIENTS", "SlurmCluster", "SlurmUnavailable", "slurm_unavailable_reason"]

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo")


class SlurmUnavailable(RuntimeError):
    """The cluster did not come up; the message carries the tail of the daemons' logs."""


def _which(name: str) -> str | None:
    path = os.pathsep.join(p for p in (os.environ.get("PATH", ""), "/usr/sbin", "/sbin") if p)
    return shutil.which(name, path=path)


def slurm_unavailable_reason() -> str | None:
    """Why the Slurm tests must skip on this machine, or None when a :class:`SlurmCluster` can be started."""
    if not sys.platform.startswith("linux"):
        return f"a test Slurm cluster needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "a test Slurm cluster needs root (slurmd runs as root)"
    missing = [name for name in DAEMONS + CLIENTS if _which(name) is None]
    if missing:
        return f"{', '.join(missing)} not found (install the Debian packages slurmctld slurmd munge slurm-client)"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed: pip install 'hsbench[slurm]'"
    return None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _mem_total_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise SlurmUnavailable("no MemTotal in /proc/meminfo")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"--- {path}: {exc}"
    return f"--- {path} (last {min(lines, len(text))} lines)\n" + "\n".join(text[-lines:])


class SlurmCluster:
    """``start()`` brings the cluster up (blocks until the node is idle, at most ``start_timeout_s``), ``stop()``
    cancels its jobs and ends every process it started; also a context manager. After ``start()``: :attr:`conf`
    (path of slurm.conf), :attr:`partition`, :attr:`env` (``{"SLURM_CONF": ...}`` for clients), :attr:`cpus`,
    :attr:`node`, :attr:`memory_mib` (the node's RealMemory)."""

    partition = "debug"

    def __init__(self, folder: str | os.PathLike, *, start_timeout_s: float = 30.0) -> None:
        self.folder = Path(folder).resolve()
        self.conf = self.folder / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}
        self.cpus = len(os.sched_getaffinity(0))
        self.node = socket.gethostname().split(".")[0]
        self.memory_mib = 0
        self.start_timeout_s = start_timeout_s
        self._processes: dict[str, subprocess.Popen] = {}
        self._socket_dir: Path | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> SlurmCluster:
        reason = slurm_unavailable_reason()
        if reason:
            raise SlurmUnavailable(reason)
        try:
            self._write_files()
            d = self.folder
            self._spawn("munged", "-F", "--force", "-S", str(self.munge_socket), f"--key-file={d / 'munge.key'}",
                        f"--pid-file={d / 'munged.pid'}", f"--log-file={d / 'log/munged.log'}",
                        f"--seed-file={d / 'munge.seed'}")
            self._wait_for(lambda: self.munge_socket.exists(), "munged to create its socket", 10.0)
            self._spawn("slurmctld", "-D", "-f", str(self.conf))
            self._spawn("slurmd", "-D", "-f", str(self.conf), "-N", self.node)
            self._wait_for(self._node_idle, f"node {self.node} to be idle in sinfo", self.start_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Cancel the cluster's jobs, SIGTERM the daemons (SIGKILL after 10 s), then SIGKILL whatever still runs with
        this cluster's ``SLURM_CONF`` (slurmstepd, job steps)."""
        if not self._processes:
            return
        if "slurmctld" in self._processes and self._processes["slurmctld"].poll() is None:
            self._client("scancel", f"--user={os.geteuid()}", timeout=10)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self._processes.get(name)
            if process is None:
                continue
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
            for handle in (process.stdout, process.stderr):
                if handle is not None:
                    handle.close()
        self._processes.clear()
        self._kill_leftovers()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    # --- helpers ---------------------------------------------------------------------------------------------------
    @property
    def munge_socket(self) -> Path:
        return (self._socket_dir or self.folder) / "munge.sock"

    def _write_files(self) -> None:
        for sub in ("spool", "state", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)  # munged refuses group/world-writable folders
        if len(str(self.folder / "munge.sock")) > 100:  # AF_UNIX paths are at most 107 bytes
            self._socket_dir = Path(tempfile.mkdtemp(prefix="hsbench-munge-"))
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        ctld_port, slurmd_port = _free_ports(2)
        self.memory_mib = max(256, int(_mem_total_mib() * 0.8))
        d = self.folder
        lines = [
            f"ClusterName=hsbench{ctld_port}",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            f"StateSaveLocation={d / 'state'}",
            f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}",
            f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"SlurmctldLogFile={d / 'log/slurmctld.log'}",
            f"SlurmdLogFile={d / 'log/slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU_Memory",
            "ReturnToService=2",
            "MpiDefault=none",
            "SchedulerType=sched/backfill",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            "InactiveLimit=0",
            "KillWait=5",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mib} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _daemon_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def _spawn(self, name: str, *args: str) -> None:
        out = open(self.folder / "log" / f"{name}.out", "wb")  # noqa: SIM115 (closed in stop())
        self._processes[name] = subprocess.Popen(
            [str(_which(name)), *args], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=self._daemon_env(), start_new_session=True, cwd=self.folder,
        )
        out.close()  # the child holds its own copy

    def _client(self, name: str, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run([str(_which(name)), *args], capture_output=True, text=True, timeout=timeout,
                                  env=self._daemon_env())
        except subprocess.TimeoutExpired:
            return None

    def _node_idle(self) -> bool:
        result = self._client("sinfo", "-h", "-n", self.node, "-o", "%T", timeout=5)
        return result is not None and result.returncode == 0 and result.stdout.strip().rstrip("*~#") == "idle"

    def _wait_for(self, condition, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            dead = {name: p.returncode for name, p in self._processes.items() if p.poll() is not None}
            if dead:
                raise SlurmUnavailable(f"{', '.join(f'{n} exited with {rc}' for n, rc in dead.items())} while "
                                       f"waiting for {what}\n{self.logs()}")
            if condition():
                return
            if time.monotonic() > deadline:
                state = self._client("sinfo", "-h", "-N", "-o", "%N %T %E", timeout=5)
                seen = (state.stdout or state.stderr).strip() if state is not None else "(sinfo timed out)"
                raise SlurmUnavailable(f"timed out after {timeout_s:.0f} s waiting for {what}; sinfo: {seen}\n"
                                       f"{self.logs()}")
            time.sleep(0.25)

    def logs(self, lines: int = 25) -> str:
        """The tail of every daemon log (for failure messages)."""
        paths = sorted((self.folder / "log").glob("*"))
        return "\n".join(_tail(p, lines) for p in paths) if paths else f"(no logs in {self.folder / 'log'})"

    def _kill_leftovers(self) -> None:
        """SIGKILL processes started with this cluster's SLURM_CONF in their environment (slurmstepd, slurmscriptd,
        job steps) that outlived the daemons; never this process or its ancestors."""
        marker = f"SLURM_CONF={self.conf}".encode()
        spared = {os.getpid()}
        pid = os.getppid()
        while pid > 1 and pid not in spared:
            spared.add(pid)
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                break
        for _ in range(3):
            found = []
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) in spared:
                    continue
                try:
                    environ = (entry / "environ").read_bytes()
                except OSError:
                    continue
                if marker in environ.split(b"\0"):
                    found.append(int(entry.name))
            if not found:
                return
            for pid in found:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)


if __name__ == "__main__":
    reason = slurm_unavailable_reason()
    if reason:
        sys.exit(reason)
    cluster = SlurmCluster(tempfile.mkdtemp(prefix="hsbench-slurm-")).start()
    print(f"export SLURM_CONF={cluster.conf}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        cluster.stop()
