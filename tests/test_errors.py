"""One error tree (``style.md`` P7): every exception class fhirnet defines descends from
:class:`fhirnet.errors.FhirnetError`, wherever it is defined, so a caller can tell fhirnet's own
errors from everything else with one ``except``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import fhirnet
from fhirnet.errors import FhirnetError


def module_names() -> list[str]:
    """Every module of the ``fhirnet`` package, the package itself included."""
    found = pkgutil.walk_packages(fhirnet.__path__, prefix=f"{fhirnet.__name__}.")
    return [fhirnet.__name__, *sorted(info.name for info in found)]


def defined_exceptions() -> list[type[BaseException]]:
    """The exception classes defined (not merely imported) in a module of ``fhirnet``."""
    found = []
    for name in module_names():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found.append(value)
    return found


def test_the_walk_sees_the_modules_and_their_errors() -> None:
    # Guards the guard: an empty walk would pass the test below.
    names = module_names()
    assert {"fhirnet.errors", "fhirnet.adapters.store.sqlite", "fhirnet.web.errors"} <= set(names)
    assert {"EntryError", "SchemaTooNewError", "OutcomeError"} <= {
        error.__name__ for error in defined_exceptions()
    }


def test_every_exception_class_of_fhirnet_descends_from_fhirnet_error() -> None:
    strays = [
        f"{error.__module__}.{error.__qualname__}"
        for error in defined_exceptions()
        if not issubclass(error, FhirnetError)
    ]
    assert strays == [], f"exception classes outside the FhirnetError tree: {strays}"
