# One command starts the course (make lab), one passes the tests (make test); each sets itself up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BROWSER_STAMP := $(VENV)/.installed-browser
CHROMIUM ?= /usr/bin/chromium
# root (containers, CI) must say so to start JupyterLab
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test unit notebooks lint bench book test-browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# dattn's light core (torch, einops, numpy, pyyaml) with the course's packages and the test tools
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[course,test]"
	touch $(STAMP)

$(BROWSER_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[course,test,browser]"
	touch $(BROWSER_STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/

test: $(STAMP)
	$(BIN)/ruff check dattn tests benchmarks notebooks .ci
	$(BIN)/python -m pytest tests --ignore=tests/browser --ignore=tests/yolov5
	$(BIN)/python -m pytest --nbmake notebooks

unit: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/browser --ignore=tests/yolov5

# JupyterLab in headless Chromium (Debian's chromium package; Playwright downloads no browser here)
test-browser: $(BROWSER_STAMP)
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) not found: apt-get install chromium (or set CHROMIUM=...)"; exit 1; }
	DATTN_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests/browser

# every notebook executed and rendered to static HTML under build/book/
book: $(BROWSER_STAMP)
	$(BIN)/python .ci/book.py --out build/book

notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbmake notebooks

lint: $(STAMP)
	$(BIN)/ruff check dattn tests benchmarks notebooks .ci

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_dattention.py

clean:
	rm -rf $(VENV) build .pytest_cache
