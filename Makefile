# siyu — one command per job. `make demo` to try it, `make test` to check it.
#
# Each recipe runs as one bash script (-e: stop at the first failing command).
# Variables you can set: PYTHON, UV, SCALE (bench: small|full), BENCH (bench names),
# PYTEST_ARGS, HOST, PORT, ARGS (passed to `siyu demo` / the i18n tool).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
SCALE ?= small
BENCH ?=
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000
ARGS ?=

# uv: on PATH, else where `pip install --user` puts it, else as a module of $(PYTHON).
# Recursive (=) on purpose: it is looked up again after the `uv` rule has installed it.
UV = $(or $(shell command -v uv 2>/dev/null),$(wildcard $(HOME)/.local/bin/uv),$(PYTHON) -m uv)

CHROMIUM := /usr/bin/chromium
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

.PHONY: help demo test bench lint format serve i18n clean uv venv system-deps

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# -- bootstrap -------------------------------------------------------------------------

uv: ## install uv with pip if it is missing
	@if $(UV) --version >/dev/null 2>&1; then exit 0; fi
	echo "uv not found: installing it with pip (--user)"
	$(PYTHON) -m pip install --user --quiet uv 2>/dev/null \
		|| $(PYTHON) -m pip install --user --quiet --break-system-packages uv \
		|| pip install --quiet uv

venv: uv ## create .venv and install siyu with the dev tools from uv.lock
	@$(UV) sync --frozen

system-deps: ## install Chromium, a CJK font and Pango (PDF reports) with apt-get if missing
	@if [ -x $(CHROMIUM) ] && [ -f $(CJK_FONT) ] && ldconfig -p | grep -q libpangoft2-1.0; then exit 0; fi
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "WARNING: Chromium ($(CHROMIUM)) or the CJK font ($(CJK_FONT)) is missing and apt-get is not"
		echo "         available: install chromium and fonts-wqy-microhei yourself; browser tests may fail."
		exit 0
	fi
	sudo=""
	if [ "$$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "WARNING: not root and no sudo: cannot install chromium and fonts-wqy-microhei; browser tests may fail."
			exit 0
		fi
		sudo="sudo"
	fi
	echo "Installing chromium, fonts-wqy-microhei and Pango with apt-get"
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		chromium fonts-wqy-microhei libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0

# -- use -------------------------------------------------------------------------------

demo: venv ## generate the demo brand and serve the console on http://127.0.0.1:8000
	@$(VENV)/bin/siyu demo $(ARGS)

serve: venv ## serve the API and console (HOST, PORT)
	@$(VENV)/bin/siyu serve --host $(HOST) --port $(PORT)

# -- check -----------------------------------------------------------------------------

test: venv system-deps ## run the whole test suite (no tests collected is a failure)
	@status=0
	$(VENV)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) || status=$$?
	if [ "$$status" -eq 5 ]; then echo "FAILED: pytest collected no tests (exit 5)"; fi
	exit "$$status"

lint: venv ## ruff check, ruff format --check, mypy (runs all three, fails if any fails)
	@status=0
	$(VENV)/bin/ruff check . || status=1
	$(VENV)/bin/ruff format --check . || status=1
	$(VENV)/bin/mypy siyu || status=1
	exit "$$status"

format: venv ## fix what ruff can fix, then format
	@$(VENV)/bin/ruff check --fix . || true
	$(VENV)/bin/ruff format .

bench: venv ## run the benchmarks (SCALE=small|full, BENCH="event_append generator")
	@$(VENV)/bin/python -m bench.run --scale $(SCALE) $(BENCH)

i18n: venv ## extract and compile the translations
	@$(VENV)/bin/python -m siyu.core.i18n_tools $(ARGS)

clean: ## remove caches, build output, test artifacts and bench results (keeps .venv and .siyu)
	@rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts build dist *.egg-info
	rm -f bench/results/*.json
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
