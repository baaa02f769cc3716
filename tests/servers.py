"""fhirnet served by a real subprocess on a free loopback port, for tests that need a socket."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    startup_seconds: float = 30,
    stop_seconds: float = 10,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (a server listening on ``port``) from the repository root until
    ``/health`` answers, yield it, and stop it on exit; its output goes to ``log_path``."""
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_health(f"http://127.0.0.1:{port}/health", server, log_path, startup_seconds)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_for_health(
    url: str, server: subprocess.Popen[bytes], log_path: Path, seconds: float
) -> None:
    """Return once ``url`` answers; fail the test with ``server``'s log if it exits first or
    ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{url} did not answer within {seconds} s:\n{log_path.read_text()}")
            time.sleep(0.1)


# -- sockets of processes, seen from outside (/proc, Linux) ----------------------------------------


@dataclass(frozen=True)
class TcpSocket:
    """One IPv4 TCP socket of this host: its ports, its state (``01`` established, ``0A``
    listening) and its inode, which names it in the ``/proc/<pid>/fd`` of its processes."""

    local_port: int
    remote_port: int
    state: str
    inode: int


def tcp_sockets() -> list[TcpSocket]:
    """This host's IPv4 TCP sockets (``/proc/net/tcp``)."""
    found = []
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, remote = fields[1].rpartition(":")[2], fields[2].rpartition(":")[2]
        found.append(TcpSocket(int(local, 16), int(remote, 16), fields[3], int(fields[9])))
    return found


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process ``pid`` holds; those it had when it ended meanwhile."""
    inodes: set[int] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass  # the process ended
    return inodes
