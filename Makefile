# One command each: `make demo` installs and runs the demo federation; `make test` installs and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_UPDATE_CHECK := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install demo smoke test test-fast deploy-test compose-check soak clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -c "import torch, torchvision, faiss, flwr, hydra; print('installed: torch', torch.__version__, 'faiss', faiss.__version__, 'flwr', flwr.__version__)"
	touch $@

demo: install
	$(VENV)/bin/fedureid simulate experiment=demo run_dir=runs/demo

smoke: install
	$(VENV)/bin/fedureid simulate experiment=smoke run_dir=runs/smoke

# everything but the soak (13-14 minutes: make soak)
test: install
	$(PY) -m pytest -q -m "not soak"

test-fast: install
	$(PY) -m pytest -q -m "not slow and not deploy"

# The Docker Compose cluster end to end (needs a Docker engine; see README "Docker")
compose-check: install
	$(PY) scripts/compose_check.py

# 16 SuperNodes, 10 rounds, SuperNodes killed every 30 s, the SuperLink restarted once (bounded: 25 min)
soak: install
	$(PY) scripts/soak.py

clean:
	rm -rf runs .pytest_cache
