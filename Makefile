# Targets: install, test, lint, format, bench, demo, up, down, doctor. Everything runs in ./.venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch lies on disk; an unpinned torch would pull a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: install test lint format bench demo up down doctor clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format .

bench: install
	$(PY) bench/throughput.py
	$(PY) bench/preview_latency.py
	$(PY) bench/simulate.py
	$(PY) bench/book_loudness.py
	$(PY) bench/recovery.py

demo: install
	$(PY) -m tasks.demo

# The whole system in the background on this machine (tasks/localstack.py); `down` stops all of it.
up: install
	$(VENV)/bin/audiobook up

down:
	$(VENV)/bin/audiobook down

doctor: install
	$(VENV)/bin/audiobook doctor

clean:
	rm -rf $(VENV) var
