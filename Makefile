# The course's commands. `make course` and `make test` are the two a newcomer needs (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Extra pip options, e.g. PIP_OPTS="--extra-index-url https://download.pytorch.org/whl/cpu" on a
# machine whose default index would otherwise pull PyTorch with CUDA.
PIP_OPTS ?=
PORT   ?= 8888
VIZ_PORT ?= 8866
# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: course setup setup-dev test lint format notebooks bench clean visualize

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.course-installed: $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/python -m pip install -q $(PIP_OPTS) -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.course-installed requirements-dev.txt
	$(BIN)/python -m pip install -q $(PIP_OPTS) -r requirements-dev.txt
	touch $@

setup: $(VENV)/.course-installed          ## the course's packages in .venv
setup-dev: $(VENV)/.dev-installed         ## plus what the tests need

course: setup                             ## set up, then open the course in JupyterLab
	$(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --port=$(PORT) $(ROOT_FLAG) \
		--LabApp.default_url=/lab/tree/00_welcome.ipynb

visualize: setup                          ## the visualizer app, no code shown (Voila; prints its URL)
	JUPYTER_PATH=$(CURDIR)/app $(BIN)/voila app/visualizer.ipynb --template=course --no-browser \
		--Voila.ip=127.0.0.1 --port=$(VIZ_PORT)  # app/voila/templates/course: no CDN requests

test: setup-dev                           ## set up, then lint and run every test
	bash scripts/run_tests.sh

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

notebooks: setup                          ## re-execute every notebook in place (outputs are committed)
	$(BIN)/python scripts/execute_notebooks.py

bench: setup-dev                          ## notebook time and memory, import time, widget redraws
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
