# Two entry points, as the README says: `make run` (the service with the example data) and
# `make test` (format, lint, types and the whole test suite). Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint profiles profiles-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# The embedded demo serves without authentication (FHIRNET_AUTH=none, logged at start-up).
# The reader's page (/crf) needs LHC-Forms, pinned and fetched once with npm pack (quick no-op
# when present; without npm the script says how to install it).
run: $(STAMP)
	bash tools/browser/install.sh --no-chromium
	FHIRNET_AUTH=none $(BIN)/fhirnet demo

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# profiles/ is generated from fsh/ by SUSHI (needs Node.js and npm); CI fails on any drift.
profiles:
	bash fsh/build.sh

profiles-check:
	bash fsh/build.sh --check

# Coverage is measured here, not in pytest's addopts, so that one test file run alone is not held
# to the floor (fail_under in pyproject.toml). The Hypothesis profile is `ci` (every test's own
# number of examples) unless HYPOTHESIS_PROFILE says otherwise (tests/conftest.py).
test: lint profiles-check
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci} $(BIN)/python -m pytest --cov --cov-report=term
