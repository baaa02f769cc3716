"""The layering of ``style.md`` P1, executable: an AST scan of every module of ``fhirnet/``.

:data:`LAYERS` is the specification: one row per package and top-level module of ``fhirnet``,
listing the other rows it may import. Dependencies point inward — ``web`` → ``services`` →
``fhir`` and ``adapters`` (store, outbox, locks, client) → ``criteria`` — and every module of
``fhirnet`` belongs to a row, so a new package cannot slip in unruled. Besides the table: the
criteria core is stdlib-only, web frameworks stay in ``fhirnet/web``, HTTP client code in
``fhirnet/adapters/fhir_client.py``, PostgreSQL (psycopg) in the ``fhirnet/adapters/pg_*.py``
adapters, nothing imports the web layer, importing ``fhirnet`` itself
imports nothing,
and only ``fhirnet/config.py`` reads the environment.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "fhirnet"
MODULES = sorted(PACKAGE.rglob("*.py"))
WEB_ONLY = {"flask", "marshmallow", "apispec", "click", "werkzeug", "gunicorn"}

#: Which other parts of ``fhirnet`` each part may import, innermost first: a row may import only
#: rows listed above it (the table has no cycle), and a module may always import its own package.
#: A package row (``fhirnet.web``) covers all its modules; ``fhirnet`` is the package's own
#: ``__init__`` (the version). ``fhirnet.errors`` is the root every layer may raise from (P7);
#: everything else is allowed only where today's code needs it — widen a row deliberately, in
#: the commit that needs it, never to make a scan pass.
LAYERS: dict[str, frozenset[str]] = {
    # The version only; imports nothing, so `import fhirnet.criteria` never pulls in Flask.
    "fhirnet": frozenset(),
    # The error hierarchy (P7): the leaf everything may import.
    "fhirnet.errors": frozenset(),
    # Protocols the services and adapters share (FhirStore, PatientLocks, Outbox, Json).
    "fhirnet.ports": frozenset({"fhirnet.errors"}),
    # Settings from FHIRNET_*: the only reader of the environment.
    "fhirnet.config": frozenset({"fhirnet.errors"}),
    # The key that signs the access tokens fhirnet issues (a file under the data directory).
    "fhirnet.token_key": frozenset({"fhirnet.errors", "fhirnet.config"}),
    # Access control: bearer tokens and scopes, configured by Settings.
    "fhirnet.access": frozenset({"fhirnet.errors", "fhirnet.config", "fhirnet.token_key"}),
    # SMART Backend Services: client assertions checked, access tokens issued (no Flask).
    "fhirnet.authorization": frozenset({"fhirnet.errors", "fhirnet.access"}),
    # An exclusive flock taken with a deadline (the locks' and the store writers' files).
    "fhirnet.adapters.flock": frozenset(),
    # Per-patient locks on the data directory.
    "fhirnet.adapters.locks": frozenset({"fhirnet.errors", "fhirnet.adapters.flock"}),
    # SMART backend-services tokens (JWT signing), for the client.
    "fhirnet.adapters.smart": frozenset({"fhirnet.errors"}),
    # The backoff formula (equal jitter) of the client's retries and the outbox's deliveries.
    "fhirnet.backoff": frozenset(),
    # The pure domain core: RECIST 1.1, iRECIST, Choi, PERCIST (also stdlib-only, see below).
    "fhirnet.criteria": frozenset({"fhirnet.errors"}),
    # Trial endpoints (BOR, PFS, DoR, ORR/DCR): plain data from per-visit overall responses.
    "fhirnet.trials": frozenset({"fhirnet.errors", "fhirnet.criteria"}),
    # FHIR mapping, no I/O: fhir.resources models to and from the criteria models.
    "fhirnet.fhir": frozenset({"fhirnet", "fhirnet.errors", "fhirnet.criteria"}),
    # Adapter: the embedded FHIR store (SQLite), speaking FHIR search and transactions.
    "fhirnet.adapters.store": frozenset(
        {"fhirnet.errors", "fhirnet.ports", "fhirnet.fhir", "fhirnet.adapters.flock"}
    ),
    # Adapter: the durable outbox of submissions, on the store's SQLite database.
    "fhirnet.adapters.outbox": frozenset(
        {"fhirnet.errors", "fhirnet.ports", "fhirnet.adapters.store"}
    ),
    # Adapter: the versioned schema migrations of fhirnet's PostgreSQL tables (psycopg).
    "fhirnet.adapters.pg_schema": frozenset(),
    # Adapter: how every PostgreSQL adapter connects; transactions with the schema migrated.
    "fhirnet.adapters.pg_connections": frozenset({"fhirnet.adapters.pg_schema"}),
    # Adapter: the outbox in PostgreSQL, shared by several hosts (FHIRNET_DATABASE_URL).
    "fhirnet.adapters.pg_outbox": frozenset(
        {
            "fhirnet.errors",
            "fhirnet.ports",
            "fhirnet.adapters.pg_schema",
            "fhirnet.adapters.pg_connections",
        }
    ),
    # Adapter: per-patient locks as PostgreSQL advisory locks, shared by several hosts.
    "fhirnet.adapters.pg_locks": frozenset({"fhirnet.errors", "fhirnet.adapters.pg_connections"}),
    # Adapter: the external FHIR server over HTTP (implements the ports).
    "fhirnet.adapters.fhir_client": frozenset(
        {"fhirnet.errors", "fhirnet.ports", "fhirnet.adapters.smart", "fhirnet.backoff"}
    ),
    # Adapter: SDTM datasets as files (Dataset-JSON, CSV, SAS XPORT v5 through pyreadstat).
    "fhirnet.adapters.sdtm_files": frozenset({"fhirnet", "fhirnet.errors", "fhirnet.trials"}),
    # Adapter: the bulk clients registered in a file (their JWKS inline or fetched from a URL).
    "fhirnet.adapters.bulk_clients": frozenset(
        {"fhirnet.config", "fhirnet.access", "fhirnet.authorization"}
    ),
    # Adapter: the client assertion ids already used (SQLite, shared by a host's workers).
    "fhirnet.adapters.replay_cache": frozenset({"fhirnet.authorization"}),
    # Adapter: the per-study pseudonymization secrets file.
    "fhirnet.adapters.study_secrets": frozenset(
        {"fhirnet.errors", "fhirnet.config", "fhirnet.fhir"}
    ),
    # Adapter: Bulk Data export jobs (SQLite) and their NDJSON files.
    "fhirnet.adapters.export_jobs": frozenset({"fhirnet.errors"}),
    # Adapter: the used client assertion ids in PostgreSQL, shared by several hosts.
    "fhirnet.adapters.pg_replay_cache": frozenset(
        {"fhirnet.authorization", "fhirnet.adapters.pg_connections"}
    ),
    # Adapter: the export jobs' table in PostgreSQL, shared by several hosts.
    "fhirnet.adapters.pg_export_jobs": frozenset(
        {"fhirnet.adapters.export_jobs", "fhirnet.adapters.pg_connections"}
    ),
    # The adapters' package: its module map only. The edges of the system (store, outbox, locks,
    # client, SMART tokens) each have a row above, so one adapter cannot reach into another.
    "fhirnet.adapters": frozenset(),
    # Use cases: orchestrate fhir + criteria (and the trial derivations) behind the ports; no
    # adapter, no web.
    "fhirnet.services": frozenset(
        {
            "fhirnet.errors",
            "fhirnet.ports",
            "fhirnet.backoff",
            "fhirnet.criteria",
            "fhirnet.trials",
            "fhirnet.fhir",
        }
    ),
    # The entry point (Flask, CLI): wires everything; nothing imports it.
    "fhirnet.web": frozenset(
        {
            "fhirnet",
            "fhirnet.errors",
            "fhirnet.ports",
            "fhirnet.config",
            "fhirnet.adapters.locks",
            "fhirnet.adapters.smart",
            "fhirnet.criteria",
            "fhirnet.trials",
            "fhirnet.fhir",
            "fhirnet.adapters.store",
            "fhirnet.adapters.outbox",
            "fhirnet.adapters.pg_connections",
            "fhirnet.adapters.pg_outbox",
            "fhirnet.adapters.pg_locks",
            "fhirnet.adapters.fhir_client",
            "fhirnet.adapters.sdtm_files",
            "fhirnet.adapters.bulk_clients",
            "fhirnet.adapters.replay_cache",
            "fhirnet.adapters.study_secrets",
            "fhirnet.adapters.export_jobs",
            "fhirnet.adapters.pg_replay_cache",
            "fhirnet.adapters.pg_export_jobs",
            "fhirnet.token_key",
            "fhirnet.access",
            "fhirnet.authorization",
            "fhirnet.services",
        }
    ),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_statements(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` for every import anywhere in ``path``, relative imports made absolute:
    ``import a.b`` is ``("a.b", [])``, ``from a import b, c`` is ``("a", ["b", "c"])``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.append((f"{base}.{node.module}" if node.module else base, names))
            else:
                found.append((node.module or "", names))
    return found


def imports(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in the file, relative imports made absolute."""
    return [module for module, _ in import_statements(path)]


def top(name: str) -> str:
    return name.partition(".")[0]


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def layer(name: str) -> str | None:
    """The row of :data:`LAYERS` the module ``name`` belongs to, ``None`` when none."""
    for row in LAYERS:
        if name == row or (row != "fhirnet" and name.startswith(row + ".")):
            return row
    return None


def imported_layers(path: Path) -> list[tuple[str, str | None]]:
    """``(name, its row)`` for every part of ``fhirnet`` that ``path`` imports. In
    ``from fhirnet.x import y`` the name is ``fhirnet.x.y`` when that is a module with a row of
    its own (``from fhirnet import client``), else ``fhirnet.x`` (``from fhirnet import
    __version__``)."""
    found: list[tuple[str, str | None]] = []
    for module, names in import_statements(path):
        if not within(module, "fhirnet"):
            continue
        for name in [f"{module}.{name}" for name in names] or [module]:
            own = layer(name)
            found += [(name, own) if own not in {None, "fhirnet"} else (module, layer(module))]
    return found


def test_the_scan_sees_the_layers() -> None:
    # Guards the guard: an empty or misplaced scan would pass every rule below.
    names = {module_name(path) for path in MODULES}
    assert {"fhirnet", "fhirnet.criteria.models", "fhirnet.web.app"} <= names
    assert "flask" in imports(PACKAGE / "web" / "app.py")


def test_every_module_belongs_to_a_row_of_the_layer_table() -> None:
    # A new package or top-level module must get a row (and so a rule) before it can land.
    unplaced = [module_name(path) for path in MODULES if layer(module_name(path)) is None]
    assert unplaced == [], f"modules of fhirnet with no row in LAYERS: {unplaced}"
    stale = set(LAYERS) - {layer(module_name(path)) for path in MODULES}
    assert stale == set(), f"rows of LAYERS with no module: {sorted(stale)}"


def test_the_layer_table_points_inward() -> None:
    # Each row may import only rows above it: no cycles, and the order of the table is the
    # order of the layers, from the core out to the web.
    rows = list(LAYERS)
    for index, (row, allowed) in enumerate(LAYERS.items()):
        assert allowed <= set(rows[:index]), (
            f"{row} may import {sorted(allowed - set(rows[:index]))}"
        )
    assert rows[-1] == "fhirnet.web", "the web layer is the outermost"


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_each_module_imports_only_the_layers_its_row_allows(path: Path) -> None:
    row = layer(module_name(path))
    assert row is not None, f"{relative(path)} has no row in LAYERS"
    for name, target in imported_layers(path):
        assert target == row or target in LAYERS[row], (
            f"{relative(path)} ({row}) imports {name} ({target}); {row} may import "
            f"{sorted(LAYERS[row]) or 'nothing of fhirnet'}"
        )


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("criteria/**/*.py")), ids=relative)
def test_the_criteria_core_imports_only_the_stdlib_itself_and_errors(path: Path) -> None:
    for name in imports(path):
        assert (
            top(name) in sys.stdlib_module_names
            or within(name, "fhirnet.criteria")
            or name == "fhirnet.errors"
        ), f"{relative(path)} imports {name}"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("trials/**/*.py")), ids=relative)
def test_the_trials_domain_uses_scipy_only_in_its_interval_module(path: Path) -> None:
    # Plain data in and out like the criteria core; the exact binomial interval needs the beta
    # distribution's quantiles, so one small module may use scipy (pinned).
    scipy_allowed = relative(path) == "fhirnet/trials/intervals.py"
    for name in imports(path):
        assert (
            top(name) in sys.stdlib_module_names
            or within(name, "fhirnet.trials")
            or within(name, "fhirnet.criteria")
            or name == "fhirnet.errors"
            or (scipy_allowed and top(name) == "scipy")
        ), f"{relative(path)} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_web_frameworks_are_imported_only_in_the_web_package(path: Path) -> None:
    if within(module_name(path), "fhirnet.web"):
        return
    for name in imports(path):
        assert top(name) not in WEB_ONLY, f"{relative(path)} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_matplotlib_is_imported_only_in_the_plot_drawing_module(path: Path) -> None:
    # The plots' data is derived in the domain (fhirnet/trials/plot_data.py); only drawing it
    # needs matplotlib, in one web module.
    if module_name(path) == "fhirnet.web.plots":
        return
    for name in imports(path):
        assert top(name) != "matplotlib", f"{relative(path)} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_requests_is_imported_only_in_the_fhir_client(path: Path) -> None:
    if module_name(path) == "fhirnet.adapters.fhir_client":
        return
    for name in imports(path):
        assert top(name) != "requests", f"{relative(path)} imports {name}"


#: The PostgreSQL adapters: the only modules that speak to PostgreSQL (psycopg).
POSTGRES_ADAPTERS = frozenset(
    {"fhirnet.adapters.pg_schema", "fhirnet.adapters.pg_outbox", "fhirnet.adapters.pg_locks"}
    | {
        "fhirnet.adapters.pg_connections",
        "fhirnet.adapters.pg_replay_cache",
        "fhirnet.adapters.pg_export_jobs",
    }
)


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_psycopg_is_imported_only_in_the_postgresql_adapters(path: Path) -> None:
    if module_name(path) in POSTGRES_ADAPTERS:
        return
    for name in imports(path):
        assert top(name) != "psycopg", f"{relative(path)} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_nothing_outside_the_web_package_imports_it(path: Path) -> None:
    if within(module_name(path), "fhirnet.web"):
        return
    for name in imports(path):
        assert not within(name, "fhirnet.web"), f"{relative(path)} imports {name}"


def test_the_package_root_imports_nothing() -> None:
    # So that `import fhirnet.criteria` never pulls in Flask.
    assert imports(PACKAGE / "__init__.py") == []


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_only_the_config_module_reads_the_environment(path: Path) -> None:
    if module_name(path) == "fhirnet.config":
        return
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"}:
            assert not (isinstance(node.value, ast.Name) and node.value.id == "os"), (
                f"{relative(path)}:{node.lineno} reads os.{node.attr}"
            )
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {alias.name for alias in node.names}
            assert not names & {"environ", "getenv", "environb"}, relative(path)
