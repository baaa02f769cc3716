"""fhirnet served by a real subprocess on a free loopback port, for tests that need a socket."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
