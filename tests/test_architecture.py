"""The layering of ``style.md`` P1, executable: an AST scan of every module of ``fhirnet/``.

Arrows point inward: the criteria core is stdlib-only, web frameworks stay in ``fhirnet/web``,
HTTP client code in ``fhirnet/client.py``, nothing imports the web layer, and importing
``fhirnet`` itself imports nothing.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "fhirnet"
MODULES = sorted(PACKAGE.rglob("*.py"))
WEB_ONLY = {"flask", "marshmallow", "apispec", "click", "werkzeug", "gunicorn"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in the file, relative imports made absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.append(f"{base}.{node.module}" if node.module else base)
            else:
                found.append(node.module or "")
    return found


def top(name: str) -> str:
    return name.partition(".")[0]


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_the_scan_sees_the_layers() -> None:
    # Guards the guard: an empty or misplaced scan would pass every rule below.
    names = {module_name(path) for path in MODULES}
    assert {"fhirnet", "fhirnet.criteria.models", "fhirnet.web.app"} <= names
    assert "flask" in imports(PACKAGE / "web" / "app.py")


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("criteria/**/*.py")), ids=relative)
def test_the_criteria_core_imports_only_the_stdlib_itself_and_errors(path: Path) -> None:
    for name in imports(path):
        assert (
            top(name) in sys.stdlib_module_names
            or within(name, "fhirnet.criteria")
            or name == "fhirnet.errors"
        ), f"{relative(path)} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_web_frameworks_are_imported_only_in_the_web_package(path: Path) -> None:
    if within(module_name(path), "fhirnet.web"):
        return
    for name in imports(path):
        assert top(name) not in WEB_ONLY, f"{relative(path)} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_requests_is_imported_only_in_the_fhir_client(path: Path) -> None:
    if module_name(path) == "fhirnet.client":
        return
    for name in imports(path):
        assert top(name) != "requests", f"{relative(path)} imports {name}"


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
