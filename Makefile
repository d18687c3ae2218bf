# The two commands of the README:
#   make run    train, tune and deploy locally, then score the validation set through the endpoint
#   make test   every test and check CI runs
# Both install what they need first: Java 17 (if absent), the project venv (.venv), the SAM CLI in its own
# venv (.tools/sam: it pins its own boto3), the checkov scanner in its own venv (.tools/checkov: it pins many
# libraries) and the npm tools (node_modules: the ASL validator, the IAM policy simulator of the local run);
# `make test` also Debian's Chromium (if absent), in which a test opens the run report, and both container engines,
# docker (started when it does not answer) and podman, with which the images are built and tested; both also
# Debian's libnss-wrapper (if absent), with which a local training job of several instances resolves its host names.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
SAM_VENV := .tools/sam
SAM_CLI_VERSION := 1.170.0
CHECKOV_VENV := .tools/checkov
CHECKOV_VERSION := 3.3.30
PACKAGES := h2o-gbm-trainer h2o-gbm-predictor local-runner
PROJECT_PACKAGES := $(wildcard $(addsuffix /pyproject.toml,$(PACKAGES)))

.PHONY: help setup run test lint build container-engines images push-images bench

help:
	@echo "make run    run tuning -> deployment -> predictions locally (no AWS account needed)"
	@echo "make test   install what is missing, then run all tests and template/ASL checks"
	@echo "make build  sam build the parent stack and its nested applications"
	@echo "make images build the trainer and predictor images (CONTAINER_ENGINE, else docker, else podman)"
	@echo "make push-images [REGISTRY=host:port] [TAG=...]  push them (default: this account's ECR) and print their URIs"
	@echo "make bench  measure speed and scale (demo vs H2O grid search, 1M rows, predictor, trainer start-up)"

$(VENV)/.installed: requirements-dev.txt $(PROJECT_PACKAGES)
	bash scripts/ensure-java.sh
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt $(addprefix -e ,$(dir $(PROJECT_PACKAGES)))
	touch $@

$(SAM_VENV)/.installed:
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

# The stamp names the version, so changing CHECKOV_VERSION reinstalls.
$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION) node_modules/.installed

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

build: setup
	PATH="$$(scripts/lambda-python-bin.sh):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --template template.yaml

# CONTAINER_ENGINE (docker or podman) when set, else docker when its engine answers, else podman (installed from
# Debian's archive if absent); the base image is pulled, or made from Debian's archive where no registry is
# reachable. Layers are cached by the engine.
images:
	bash scripts/build-images.sh

# To this account's ECR (repositories created if missing), or to REGISTRY; the tag is the git revision.
push-images: images
	REGISTRY="$(REGISTRY)" TAG="$(TAG)" bash scripts/push-images.sh

# The images must build and run with both engines: they are built, and their tests run, with each.
container-engines:
	bash scripts/ensure-container-engines.sh

test: setup lint container-engines
	for engine in docker podman; do CONTAINER_ENGINE=$$engine bash scripts/build-images.sh || exit 1; done
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-nss-wrapper.sh
	$(VENV)/bin/pytest

# Not part of `make test`: it takes minutes and wants a quiet machine. BENCH_OPTIONS e.g. "--seeds 1 --skip million-rows".
bench: $(VENV)/.installed $(SAM_VENV)/.installed node_modules/.installed
	bash scripts/ensure-wrk.sh
	bash scripts/ensure-nss-wrapper.sh
	$(VENV)/bin/python scripts/bench.py $(BENCH_OPTIONS)

# The local run needs the SAM CLI (its translator expands the templates' IAM roles) and the npm IAM policy simulator.
run: $(VENV)/.installed $(SAM_VENV)/.installed node_modules/.installed
	bash scripts/ensure-nss-wrapper.sh
	$(VENV)/bin/h2o-sagemaker-local run $(RUN_OPTIONS)
