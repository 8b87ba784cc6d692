# Two commands matter: `make book` (render the book, every chapter executed) and `make test`
# (unit tests plus every chapter executed with nbmake in the quick profile). Both create the
# virtual environment on first use.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.md))
NOTEBOOKS := $(CHAPTERS:.md=.ipynb)
PYTEST_WORKERS ?= 2
# Data cached by the chapters lands in one place whatever the working directory of a kernel.
export NBHELPERS_DATA ?= $(CURDIR)/data

.PHONY: help setup notebooks test book bench clean

help:
	@echo "make book       render the book to _build/html (executes every chapter)"
	@echo "make test       unit tests + every chapter through nbmake (quick profile)"
	@echo "make bench      run the benchmarks in benchmarks/"
	@echo "make notebooks  generate book/*.ipynb from the MyST sources (jupytext)"
	@echo "make setup      create $(VENV) and install nbhelpers with its test and book extras"
	@echo "make clean      remove generated notebooks and build output"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,book]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (convnets book)"
	@touch $@

notebooks: setup
	$(BIN)/jupytext --sync $(CHAPTERS)

test: notebooks
	NBHELPERS_PROFILE=quick $(BIN)/python -m pytest tests $(NOTEBOOKS) --nbmake --nbmake-timeout=300 \
		-n $(PYTEST_WORKERS) --dist loadgroup --durations=12 -p no:cacheprovider

book: setup
	$(BIN)/jupyter-book build . --all --builder html -W -n --keep-going
	@echo "HTML: $(CURDIR)/_build/html/index.html"

bench: setup
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf _build $(NOTEBOOKS)
