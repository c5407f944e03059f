# Developer entry points. Everything runs from a local virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench generate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## demo: the exporter against the built-in simulated KubeVirt API (http://127.0.0.1:9745/metrics)
demo: $(STAMP)
	$(BIN)/kubevirt-vss-exporter --demo --listen 127.0.0.1:9745 --log-format console

## test: every test (unit, integration, alert rules, manifests, end to end)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q

## lint: ruff only
lint: $(STAMP)
	$(BIN)/ruff check .

## bench: /metrics latency and memory at 1k / 10k / 50k VMs
bench: $(STAMP)
	$(BIN)/python -m benchmarks.scrape

## generate: regenerate alert rules and dashboards from their sources
generate: $(STAMP)
	$(BIN)/python -m alerts.generate
	$(BIN)/python -m grafana.generate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
