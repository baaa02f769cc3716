"""CPU of one ``POST /api/v1/assessments`` inside the application, before and after: the Flask app
of a base revision and of the working tree called as gunicorn calls it (a WSGI environ, the
body, fhirnet's hooks and request log), without sockets, gunicorn or the load generator, whose
costs are the same on both sides and whose noise hides a change of a few percent.

    .venv/bin/python -m bench.api_cpu --base 3f131c1            # 40 pairs of batches
    .venv/bin/python -m bench.api_cpu --base 3f131c1 --pairs 100 --requests 200

One interpreter per side (the side's ``fhirnet`` first on ``PYTHONPATH``, as
:mod:`bench.before_after` does) builds the app (embedded store in a temporary directory,
``FHIRNET_AUTH=none``, log lines to ``/dev/null``) and warms up. Then the two take turns, in
lock-step: a batch of ``--requests`` calls of the body
``examples/assessments/recist-1.1-small-bowel-net-prrt.json`` on one side, the same on the
other (which side goes first alternates), timed with ``time.thread_time``; the same for
``GET /health``, the floor of any request. A pair's two batches ran within a fraction of a
second of each other, so a busy host slows both: the result is the median of the pairs'
after/before ratios, with the medians per side beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.before_after import ASSESSMENT, base_worktree, remove_worktree
from bench.load_test import ROOT

_PROBE = """
import io, json, logging, os, sys, tempfile, time
from pathlib import Path
os.environ["FHIRNET_AUTH"] = "none"
os.environ["FHIRNET_DATA_DIR"] = tempfile.mkdtemp()
from fhirnet.config import load_settings
from fhirnet.web.app import create_app
app = create_app(load_settings())
for handler in logging.getLogger("fhirnet").handlers:
    handler.setStream(open(os.devnull, "w"))
body = Path(sys.argv[1]).read_bytes()
requests = int(sys.argv[2])
CALLS = {"api": ("POST", "/api/v1/assessments", body), "health": ("GET", "/health", b"")}

def call(method, path, data):
    environ = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(data)),
        "HTTP_HOST": "127.0.0.1:8080", "REMOTE_ADDR": "127.0.0.1",
    }
    status = []
    answer = app(environ, lambda line, headers, exc_info=None: status.append(line))
    b"".join(answer)
    answer.close()
    assert status[0].startswith("200"), status

for name in CALLS:
    for _ in range(200):
        call(*CALLS[name])
print("ready", flush=True)
for line in sys.stdin:
    method, path, data = CALLS[line.strip()]
    start = time.thread_time()
    for _ in range(requests):
        call(method, path, data)
    print((time.thread_time() - start) / requests * 1e6, flush=True)
"""


def start(root: Path, requests: int) -> subprocess.Popen[str]:
    """A side's interpreter, ready for batches."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FHIRNET_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    probe = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", _PROBE, str(ASSESSMENT), str(requests)],
        cwd=root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the app's start-up warning (FHIRNET_AUTH=none)
        text=True,
    )
    assert probe.stdout is not None
    if probe.stdout.readline().strip() != "ready":
        raise SystemExit(f"the probe in {root} did not start")
    return probe


def batch(probe: subprocess.Popen[str], name: str) -> float:
    """One batch of ``name`` calls on ``probe``: microseconds of thread CPU per call."""
    assert probe.stdin is not None
    assert probe.stdout is not None
    probe.stdin.write(name + "\n")
    probe.stdin.flush()
    return float(probe.stdout.readline())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the before revision")
    parser.add_argument("--pairs", type=int, default=40, help="pairs of batches [40]")
    parser.add_argument("--requests", type=int, default=200, help="calls per batch [200]")
    args = parser.parse_args()
    figures: dict[str, dict[str, list[float]]] = {
        name: {"before": [], "after": []} for name in ("api", "health")
    }
    with tempfile.TemporaryDirectory(prefix="fhirnet-before-") as tmp:
        base = base_worktree(args.base, Path(tmp))
        probes = {}
        try:
            probes = {"before": start(base, args.requests), "after": start(ROOT, args.requests)}
            for number in range(args.pairs):
                order = ["before", "after"] if number % 2 == 0 else ["after", "before"]
                for name in figures:
                    for side in order:
                        figures[name][side].append(batch(probes[side], name))
        finally:
            for probe in probes.values():
                probe.kill()
                probe.wait()
            remove_worktree(base)
    print(
        f"before = {args.base}, after = this working tree; {args.pairs} pairs of batches of "
        f"{args.requests} calls\n"
    )
    print("| request | before (median) | after (median) | after / before (median of pairs) |")
    print("|---|---|---|---|")
    for name, label in (("api", "POST /api/v1/assessments"), ("health", "GET /health")):
        old, new = figures[name]["before"], figures[name]["after"]
        ratio = statistics.median(n / o for o, n in zip(old, new, strict=True))
        print(
            f"| {label} | {statistics.median(old):.0f} us | {statistics.median(new):.0f} us "
            f"| {ratio:.3f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
