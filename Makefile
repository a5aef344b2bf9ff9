# keyspot: `make run` reproduces the pipeline, `make test` runs the tests.
# Both set everything up first (Debian packages, .venv, pinned deps).

VENV ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup params run test firmware firmware-test lint lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: ## install Debian packages and the pinned Python environment
	@bash scripts/setup.sh

params: setup ## compose conf/ into params.yaml (after editing conf/)
	keyspot compose

run: setup ## run the whole pipeline on the default dataset (dvc repro)
	dvc repro

test: setup ## lint, then run the test suite
	ruff check keyspot stages tests bench hydra_plugins
	python -m pytest $(PYTEST_ARGS)

# The folder c-export writes, as params.yaml names it (export.out_dir).
OUT_DIR = $(shell python -c 'import yaml; print(yaml.safe_load(open("params.yaml"))["export"]["out_dir"])')

firmware: setup ## build the PSoC 6 app without ModusToolbox: firmware/psoc6/build/keyspot-psoc6.elf, .hex, size.json
	$(MAKE) -C firmware/psoc6 -f gcc.mk GENERATED=$(abspath $(OUT_DIR))

firmware-test: setup ## firmware/core on the host and under QEMU, and the PSoC 6 app on the real libraries
	python -m pytest tests/test_c_export.py tests/test_firmware_core.py tests/test_c_engine.py \
		tests/test_psoc6_firmware.py

.PHONY: serve bench-serve
serve: setup ## serve the model on http://127.0.0.1:8080 (keyspot serve)
	keyspot serve

bench-serve: setup ## keyspot serve against the tutorials' Flask server: latency, req/s, ratio
	python bench/serve_bench.py

lint: setup ## ruff
	ruff check keyspot stages tests bench hydra_plugins

lock: ## re-pin every Python dependency from the current .venv
	$(VENV)/bin/pip freeze --exclude-editable | grep -v '^keyspot' > requirements.lock

clean: ## remove the environment and Python caches (DVC outputs stay)
	rm -rf $(VENV) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
