# `make train` and `make test` set everything up on a fresh clone.
VENV := .venv
PYTHON := $(VENV)/bin/python
# Offline machines keep real MNIST beside the project; elsewhere torchvision downloads it into data/.
DATA_DIR ?= $(if $(wildcard ../shared/data/MNIST/raw),../shared/data,data)
ARGS ?=

.PHONY: train test lint format

$(VENV)/installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev,wandb]'
	touch $@

train: $(VENV)/installed
	$(PYTHON) train.py paths.data_dir=$(DATA_DIR) $(ARGS)

test: $(VENV)/installed
	$(PYTHON) -m pytest $(ARGS)

lint: $(VENV)/installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/installed
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .
