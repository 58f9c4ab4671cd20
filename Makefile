# The two set-up commands of the README: `make serve` and `make test` (`make test-quick`
# leaves out the slow tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 50051

.PHONY: serve test test-quick venv proto model clean

$(BIN)/attribid: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

venv: $(BIN)/attribid

# Serving needs no PyTorch and no stub generator: the stubs are committed
# (and a test checks that they match the .proto).
serve: $(BIN)/attribid
	$(BIN)/attribid serve --address $(HOST):$(PORT)

$(VENV)/.dev: $(BIN)/attribid
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q 'torch==2.13.0'
	touch $@

# The whole suite, doctests included (what .ci/run calls).
test: $(VENV)/.dev
	$(BIN)/python -m pytest --ignore=tests/batch/test_spark_engine.py
	# Spark's JVM gateway, forked from a process that has run in-process gRPC servers,
	# exits before it starts; the Spark tests get a pytest process of their own.
	$(BIN)/python -m pytest tests/batch/test_spark_engine.py

# The same without the tests marked slow (those of more than a few seconds each).
test-quick: $(VENV)/.dev
	$(BIN)/python -m pytest -m "not slow"

proto: $(VENV)/.dev
	$(BIN)/python -m attribid.api.protogen

model: $(VENV)/.dev
	$(BIN)/attribid train-shipped

clean:
	rm -rf $(VENV) build *.egg-info
