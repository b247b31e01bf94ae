# One command starts the course (make lab), one passes the tests (make test); each sets itself up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test unit notebooks lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

test: $(STAMP)
	$(BIN)/ruff check dattn tests benchmarks notebooks
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --nbmake notebooks

unit: $(STAMP)
	$(BIN)/python -m pytest tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbmake notebooks

lint: $(STAMP)
	$(BIN)/ruff check dattn tests benchmarks notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_dattention.py

clean:
	rm -rf $(VENV) build .pytest_cache
