# mosaik-py: every target installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv debian-deps test lint demo bench clean image-deps image e2e-image e2e-rollout

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev,deploy]'
	touch $(STAMP)

# Debian packages the tests use: OVMF (a real TDVF to measure), iproute2 and iptables (multi-host
# tests in network namespaces).
DEBIAN_TEST_PACKAGES := ovmf iproute2 iptables
debian-deps:
	@if ! test -f /usr/share/ovmf/OVMF.fd || ! command -v iptables >/dev/null || ! command -v ip >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_TEST_PACKAGES) >/dev/null; \
	fi

test: venv debian-deps image-deps
	$(PY) -m pytest -q -rs -p no:cacheprovider tests

lint: venv
	$(VENV)/bin/ruff check node attestation images playbooks tests bench examples
	$(VENV)/bin/ruff format --check node attestation images playbooks tests bench examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

demo: venv
	$(VENV)/bin/mosaik demo

# One benchmark of bench/ (BENCH=groups, streams, collections, ...); the bench extra holds the
# peers some of them compare against (PySyncObj).
BENCH ?= transport
bench: venv
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/$(BENCH).py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# TDX guest images (images/, as root): mmdebstrap, zstd, cpio to build; qemu to boot.
IMAGE_RECIPE ?= debian-trixie
IMAGE_OUT    ?= build/image
image-deps: debian-deps
	@command -v mmdebstrap >/dev/null && command -v zstd >/dev/null && command -v cpio >/dev/null \
	  && command -v qemu-system-x86_64 >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap zstd cpio >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null; }

image: venv image-deps
	$(PY) -m images build $(IMAGE_RECIPE) --out $(IMAGE_OUT)

# Builds the default recipe twice, compares every artifact, boots it under QEMU TCG.
e2e-image: venv image-deps
	$(PY) tests/e2e/image_e2e.py --recipe $(IMAGE_RECIPE)

# Ansible rollout to three QEMU (TCG) VMs in a private network namespace (root; ~23 min).
E2E_ROLLOUT_PACKAGES := qemu-system-x86 ovmf mmdebstrap zstd iproute2 openssh-client
e2e-rollout: venv
	@for t in qemu-system-x86_64 mmdebstrap zstd ip ssh ssh-keygen; do command -v $$t >/dev/null || m=1; done; \
	if [ -n "$$m" ] || ! test -f /usr/share/ovmf/OVMF.fd; then apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(E2E_ROLLOUT_PACKAGES) >/dev/null; fi
	$(PY) tests/e2e/rollout_e2e.py
