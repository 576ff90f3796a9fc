# mosaik-py: every target installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv debian-deps test lint demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# Debian packages the tests use: OVMF (a real TDVF to measure).
debian-deps:
	@test -f /usr/share/ovmf/OVMF.fd || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ovmf >/dev/null; }

test: venv debian-deps
	$(PY) -m pytest -q -p no:cacheprovider tests

lint: venv
	$(VENV)/bin/ruff check node attestation tests bench examples
	$(VENV)/bin/ruff format --check node attestation tests bench examples
	$(VENV)/bin/mypy

demo: venv
	$(VENV)/bin/mosaik demo

bench: venv
	$(PY) bench/transport.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
