# promml: `make test` installs what it needs (a virtualenv, and Prometheus/Alertmanager from Debian when
# missing), then lints and runs the whole suite, end-to-end test included.

VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
SYSTEM_BINARIES := prometheus promtool prometheus-alertmanager amtool docker-compose victoria-metrics
SYSTEM_PACKAGES := prometheus prometheus-alertmanager docker-compose victoria-metrics
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
COMPOSE := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: install install-system lint test demo up down bench backtest clean

install: $(VENV)/.installed

$(VENV)/.installed: exporter/pyproject.toml exporter/setup.py exporter/src/promml/exporter/_fastscan.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e 'exporter[dev]'
	touch $@

install-system:
	@missing=""; for binary in $(SYSTEM_BINARIES); do command -v $$binary >/dev/null || missing="$$missing $$binary"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages for:$$missing"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

lint: install
	$(BIN)/ruff check .

test: install install-system lint
	$(BIN)/pytest

demo: install install-system
	$(BIN)/promml demo --repo-root . --workdir .demo

up:
	$(COMPOSE) up -d --build

down:
	$(COMPOSE) down

# Evidently 0.7 needs pandas < 3, so the exporter benchmark runs in a virtualenv of its own.
BENCH_VENV ?= .venv-bench

$(BENCH_VENV)/.installed: exporter/pyproject.toml exporter/setup.py exporter/src/promml/exporter/_fastscan.c
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e 'exporter[exporter]' 'evidently>=0.7,<0.8' 'pandas<3'
	touch $@

# NannyML 0.13 pins dependencies that clash with the project's, so the CBPE comparison runs in a virtualenv of its
# own too: NannyML, and promml without its dependencies (the benchmark needs numpy, scipy and scikit-learn, which
# NannyML brings, and the package's own two).
NANNYML_VENV ?= .venv-nannyml

$(NANNYML_VENV)/.installed: exporter/pyproject.toml exporter/setup.py exporter/src/promml/exporter/_fastscan.c
	$(PYTHON) -m venv $(NANNYML_VENV)
	$(NANNYML_VENV)/bin/pip install --quiet --upgrade pip
	$(NANNYML_VENV)/bin/pip install --quiet 'nannyml==0.13.1' statsmodels 'prometheus-client>=0.20,<1' 'msgspec>=0.18'
	$(NANNYML_VENV)/bin/pip install --quiet --no-deps -e exporter
	touch $@

bench: install $(BENCH_VENV)/.installed $(NANNYML_VENV)/.installed
	$(BIN)/python benchmarks/bench_instrument.py
	$(BIN)/python benchmarks/bench_instrument.py --multiprocess
	$(BIN)/python benchmarks/bench_load.py --seconds 60
	$(BENCH_VENV)/bin/python benchmarks/bench_exporter.py
	$(BIN)/python benchmarks/bench_backtest.py
	$(BIN)/python benchmarks/bench_checkpoint.py
	$(NANNYML_VENV)/bin/python benchmarks/bench_cbpe.py

# The detection goals of docs/detection-quality.md: every shipped scenario simulated and replayed through the
# real exporter, Prometheus rules and Alertmanager routing (a week at 50 predictions/s where the goal says so;
# it takes a while). Rewrites the page and its plots; exits non-zero when a goal fails.
backtest: install install-system
	$(BIN)/python benchmarks/detection_quality.py --docs

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(NANNYML_VENV) .demo .pytest_cache .ruff_cache
