"""The ``fhirnet`` command: ``assess FILE.json`` offline, ``serve`` with gunicorn, ``demo``.

``assess`` runs exactly the endpoint's path (:func:`fhirnet.web.api_views.assess_document`) and
prints the same bodies: the response on stdout (exit 0), or the API's ``{"errors": ...}`` body on
stderr (exit 2, click's code for bad input).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import click
from flask import Flask
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from fhirnet import __version__
from fhirnet.config import ConfigError, Settings, load_settings
from fhirnet.errors import InvalidInputError
from fhirnet.web.api_views import assess_document
from fhirnet.web.app import create_app
from fhirnet.web.errors import error_body

INVALID_INPUT_EXIT_CODE = 2


class _FhirnetGroup(click.Group):
    """Maps fhirnet errors to exit codes in one place, as ``web/errors.py`` does for HTTP."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidInputError as error:
            click.echo(_dumps(error_body(error.errors)), err=True)
            ctx.exit(INVALID_INPUT_EXIT_CODE)
        except ConfigError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_FhirnetGroup)
@click.version_option(__version__, prog_name="fhirnet")
def main() -> None:
    """fhirnet: tumour response categories (RECIST 1.1, iRECIST, Choi, PERCIST 1.0)."""


@main.command()
@click.argument("file", type=click.File("rb"))
def assess(file: BinaryIO) -> None:
    """Assess the request in FILE (JSON, as POST /api/v1/assessments takes; - reads stdin)."""
    click.echo(_dumps(assess_document(file.read())))


@main.command()
@click.option("--host", help="Address to bind [default: FHIRNET_HOST or 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="[default: FHIRNET_PORT or 8080].")
def serve(host: str | None, port: int | None) -> None:
    """Serve the HTTP API with gunicorn."""
    settings = load_settings()
    app = create_app(settings)
    _GunicornServer(app, gunicorn_options(settings, host=host, port=port)).run()


@main.command()
@click.option("--host", help="Address to bind [default: FHIRNET_HOST or 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="[default: FHIRNET_PORT or 8080].")
@click.option("--once", is_flag=True, help="Stop after the examples instead of serving on.")
def demo(host: str | None, port: int | None, once: bool) -> None:
    """Serve fhirnet, send it the example requests over HTTP and print their categories."""
    settings = load_settings()
    options = gunicorn_options(settings, host=host, port=port)
    files = sorted((settings.examples_dir / "assessments").glob("*.json"))
    base_url = f"http://{options['bind']}"

    def when_ready(_server: object) -> None:
        # Runs in gunicorn's master once the socket listens; requests wait in its backlog until
        # a worker takes them, so the examples go through the real HTTP stack.
        threading.Thread(target=_run_examples, args=(base_url, files, once), daemon=True).start()

    quiet = {"when_ready": when_ready, "accesslog": None}  # the summary is the demo's output
    _GunicornServer(create_app(settings), {**options, **quiet}).run()


def _run_examples(base_url: str, files: Sequence[Path], stop: bool) -> None:
    """POST each example to the running service and print a summary of what came back."""
    _wait_until_healthy(base_url)
    click.echo(f"\nfhirnet {__version__} is serving on {base_url}")
    for path in files:
        request = urllib.request.Request(  # noqa: S310 - the URL is our own loopback server
            f"{base_url}/api/v1/assessments",
            data=path.read_bytes(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            click.echo(_summary(path, json.load(answer)))
    example = os.path.relpath(files[0]) if files else "FILE"
    click.echo(
        f"\nTry: curl -s -H 'Content-Type: application/json' --data @{example} "
        f"{base_url}/api/v1/assessments\nOpenAPI: {base_url}/api/v1/openapi.json"
    )
    if stop:
        os.kill(os.getpid(), signal.SIGTERM)  # gunicorn's master shuts down gracefully


def _wait_until_healthy(base_url: str, attempts: int = 100) -> None:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2):  # noqa: S310
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)


def _summary(path: Path, body: Mapping[str, Any]) -> str:
    """A few lines per example: each follow-up's overall response and sum, then the BOR."""
    lines = [f"\n{path.name} ({body['criteria']}, baseline {body['baselineDate']})"]
    for timepoint in body["timepoints"]:
        change = timepoint["changeFromBaselinePct"]
        figures = (
            "" if change is None else f"  sum {timepoint['sumMm']} mm ({change:+}% vs baseline)"
        )
        lines.append(f"  {timepoint['date']}  {timepoint['overallResponse']:<16}{figures}")
    best = body["bestOverallResponse"]
    confirmed = {None: "", True: ", confirmed", False: ", not confirmed"}[best["confirmed"]]
    lines.append(f"  best overall response: {best['response']} ({best['date']}{confirmed})")
    lines += [f"  warning: {warning}" for warning in body["warnings"]]
    return "\n".join(lines)


def gunicorn_options(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> dict[str, Any]:
    """gunicorn settings for ``fhirnet serve``: bind address from Settings unless overridden.

    :param settings: the service settings.
    :param host: overrides ``settings.host``.
    :param port: overrides ``settings.port``.
    :returns: gunicorn setting names → values.
    """
    address = host or settings.host
    if ":" in address:  # an IPv6 address needs brackets in a bind string
        address = f"[{address}]"
    return {
        "bind": f"{address}:{port or settings.port}",
        "loglevel": settings.log_level.lower(),
        "accesslog": "-",
        # gunicorn >= 25 opens a control socket in $HOME by default; we do not use it, and two
        # instances on one host would compete for the same path.
        "control_socket_disable": True,
    }


class _GunicornServer(BaseApplication):  # type: ignore[misc]
    """gunicorn run in-process on an app already built, so no import string or cwd is needed."""

    def __init__(self, app: Flask, options: Mapping[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        return self._app


def _dumps(body: Any) -> str:
    # allow_nan=False: a non-finite number must fail loudly, never print invalid JSON.
    return json.dumps(body, indent=2, allow_nan=False, ensure_ascii=False)


if __name__ == "__main__":
    main(prog_name="fhirnet")
