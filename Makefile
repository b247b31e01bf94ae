# One command starts the course (make lab), one passes the tests (make test); each sets itself up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BROWSER_STAMP := $(VENV)/.installed-browser
CHROMIUM ?= /usr/bin/chromium
# root (containers, CI) must say so to start JupyterLab
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test unit notebooks lint bench book test-browser yolov5-env test-yolov5 detector-eval clean

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

# The real YOLOv5 v7.0 code (PyPI's yolov5 7.0.14) with the guide's edits applied as text, in its own venv:
#   build/yolov5/yolov5/   the patched package (train.py, val.py, export.py, models/ with the seed's yaml files)
#   build/yolov5/config/   YOLOV5_CONFIG_DIR: a local font as Arial.ttf, so nothing is downloaded
#   .venv-yolov5/          its requirements, the guide's pins, dattn's core (editable), the test tools;
#                          build/yolov5 is on its sys.path, so `import yolov5` is the patched copy
# Run YOLOv5 there as tests/yolov5/conftest.py does, e.g. from any folder:
#   YOLOV5_CONFIG_DIR=$PWD/build/yolov5/config YOLOv5_AUTOINSTALL=false YOLO_AUTOINSTALL=false \
#   TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 .venv-yolov5/bin/python -m yolov5.train --weights '' ...
Y5_VENV  := .venv-yolov5
Y5_BIN   := $(Y5_VENV)/bin
Y5_DIR   := build/yolov5
Y5_STAMP := $(Y5_VENV)/.installed

$(Y5_BIN)/python:
	$(PYTHON) -m venv $(Y5_VENV)
	$(Y5_BIN)/python -m pip install -q --upgrade pip

$(Y5_STAMP): $(Y5_BIN)/python pyproject.toml tests/yolov5/prepare.py dattn/yolo/ultralytics_guide.md \
		$(wildcard dattn/yolo/configs/*.yaml)
	$(Y5_BIN)/python tests/yolov5/prepare.py source --out $(Y5_DIR)
	$(Y5_BIN)/python -m pip install -q -r $(Y5_DIR)/requirements.txt -e .
	$(Y5_BIN)/python tests/yolov5/prepare.py finish --out $(Y5_DIR)
	touch $(Y5_STAMP)

yolov5-env: $(Y5_STAMP)

test-yolov5: $(Y5_STAMP)
	$(Y5_BIN)/python -m pytest tests/yolov5

# The shipped detectors (assets/detector_*.pt) re-evaluated on the val split (made on demand in build/detector_data)
# with YOLOv5 v7.0's val protocol; one line per model, beside the metrics its record holds. They were trained by
#   .venv-yolov5/bin/python -m dattn.yolo.experiment --kind stock|c3_dattention --seed N --epochs 12
# after `make yolov5-env` (about 15 minutes a run on 2 cores); `python -m dattn.yolo.detector` prints the table.
detector-eval: $(STAMP)
	$(BIN)/python -m dattn.yolo.evaluate

notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbmake notebooks

lint: $(STAMP)
	$(BIN)/ruff check dattn tests benchmarks notebooks .ci

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_dattention.py

clean:
	rm -rf $(VENV) $(Y5_VENV) build .pytest_cache
