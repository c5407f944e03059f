# Developer entry points. Everything runs from a local virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit lint bench generate image clean

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

## unit: the quick run while developing — every test except those marked slow (timed, flood, external tools, end to end)
unit: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

## lint: ruff only
lint: $(STAMP)
	$(BIN)/ruff check .

## bench: /metrics latency and memory at 1k / 10k / 50k VMs
bench: $(STAMP)
	$(BIN)/python -m benchmarks.scrape

## generate: regenerate alert rules, dashboards and the mixin built from them
generate: $(STAMP)
	$(BIN)/python -m alerts.generate
	$(BIN)/python -m grafana.generate
	$(BIN)/python -m mixin.generate

## image: build the container image with docker, podman or buildah (whichever is on PATH)
##        IMAGE=<name> and VERSION=<tag> override the published name and the package version;
##        CONTAINER_ENGINE=<docker|podman|buildah> picks one when several are installed.
IMAGE ?= ghcr.io/kubevirt-vss-exporter/kubevirt-vss-exporter
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
SOURCE_URL ?= https://github.com/kubevirt-vss-exporter/kubevirt-vss-exporter
CONTAINER_ENGINE ?= $(firstword $(foreach engine,docker podman buildah,$(if $(shell command -v $(engine) 2>/dev/null),$(engine))))
image:
	@if [ -z "$(CONTAINER_ENGINE)" ]; then \
	  echo "error: make image needs docker, podman or buildah on PATH; none was found" >&2; exit 1; fi
	$(CONTAINER_ENGINE) build --build-arg VERSION=$(VERSION) --build-arg SOURCE_URL=$(SOURCE_URL) \
	  -t $(IMAGE):$(VERSION) -f Dockerfile .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
