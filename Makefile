# mmscale: `make demo` runs the main job, `make test` runs the tests. Each sets itself up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m mmscale.allocator install  # tcmalloc: XLA:CPU steps ~1.5-2x faster (mmscale/allocator.py)
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)  # --durations: CI logs name the slowest tests.
	$(BIN)/python -m mmscale.allocator run $(BIN)/python -m pytest -q --durations=25

test-fast: $(STAMP)
	$(BIN)/python -m mmscale.allocator run $(BIN)/python -m pytest -q -m 'not slow'

demo: $(STAMP)
	$(BIN)/python -m mmscale demo

clean:
	rm -rf $(VENV) demo_out
