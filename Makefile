# Two commands matter: `make book` (render the book, every chapter executed) and `make test`
# (unit tests plus every chapter executed with nbmake in the quick profile). Both create the
# virtual environment on first use. Each chapter is executed once when both run, test first
# (as in CI): the book build renders the chapters the test run executed for the same code and
# settings, and executes only the others (book/_ext/executions.py).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.md))
NOTEBOOKS := $(CHAPTERS:.md=.ipynb)
# Three pytest workers of one torch thread each on two cores: many hostile cases wait (on
# subprocesses, throttled servers, locks), and a third worker fills that time (measured on the
# 2-core machine: make test 274 s with two workers, 239 s with three).
PYTEST_WORKERS ?= 3
# What `make test` leaves for the book build: the chapters nbmake executed, the context they
# were executed in, the hostile suite's report (book/_ext/executions.py). Not under _build/:
# nbmake does not collect notebooks there.
TEST_RUN := .test-run
# pytest-xdist hands out tests in the order they are collected: the longest chapters first, so
# that none of them starts last and runs alone at the end (measured times: README). Chapter 06
# comes last, after the unit tests: by then chapter 05 has stored the tissue model that chapter
# 06 would otherwise train a second time (store_trained_model). Run alone, or earlier, it
# trains the model itself. (pytest-xdist's xdist_group cannot pin the pair to one worker under
# pytest 9, whose node ids xdist can no longer rewrite.)
LONGEST_FIRST := 05 07 04
LAST := 06
ORDERED := $(foreach n,$(LONGEST_FIRST),$(filter book/$(n)_%,$(CHAPTERS)))
ORDERED += $(filter-out $(ORDERED) $(foreach n,$(LAST),book/$(n)_%.md),$(CHAPTERS))
EXECUTED := $(patsubst book/%.md,$(TEST_RUN)/book/%.ipynb,$(ORDERED))
EXECUTED_LAST := $(patsubst book/%.md,$(TEST_RUN)/book/%.ipynb,$(foreach n,$(LAST),$(filter book/$(n)_%,$(CHAPTERS))))
# Data cached by the chapters lands in one place whatever the working directory of a kernel.
export NBHELPERS_DATA ?= $(CURDIR)/data
# Progress bars are for people watching a run; the rendered book and the test logs show none.
export TQDM_DISABLE ?= 1
# The executed chapters must not depend on the caller's plotting environment. ipykernel picks the
# inline backend only when MPLBACKEND is unset, so a kernel started with MPLBACKEND=Agg (common on
# servers and in containers) shows no figure at all; and a stale font cache under ~/.cache prints
# a screen of findfont warnings into the pages. Kernels started from here therefore get no
# MPLBACKEND and a matplotlib folder of their own (`make book` starts its font list afresh).
# nbhelpers.plotting repairs both inside any kernel as well, for chapters run by hand.
unexport MPLBACKEND
export MPLCONFIGDIR := $(CURDIR)/_build/matplotlib

.PHONY: help setup notebooks test lint format book check-book chromium bench clean

help:
	@echo "make book       render the book to _build/html (executes every chapter that a"
	@echo "                make test of the same code has not executed)"
	@echo "make test       unit tests + every chapter through nbmake (quick profile)"
	@echo "make check-book build the book, open every page in headless Chromium, run two"
	@echo "                chapters without network or mirror"
	@echo "make lint       ruff: formatting and lint checks, zero findings expected"
	@echo "make format     ruff: format the Python sources and apply safe lint fixes"
	@echo "make bench      run the benchmarks in benchmarks/ (saved for the Performance page)"
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

# Paired .ipynb files for Jupyter and VS Code; the MyST .md files stay the committed source.
notebooks: setup
	$(BIN)/jupytext --sync $(CHAPTERS)
	@echo "Open book/*.ipynb with the kernel \"Python 3 (convnets book)\" (see book/running.md)."

# Each worker runs its chapters with one torch thread (NBHELPERS_THREADS). nbmake
# executes fresh copies of the chapters in $(TEST_RUN)/book and keeps their outputs there
# (--overwrite); the hostile suite records what each case observed in $(TEST_RUN)/reliability.
test: export NBHELPERS_PROFILE := quick
test: export NBHELPERS_THREADS := 1
test: export NBHELPERS_RELIABILITY_RECORD := $(CURDIR)/$(TEST_RUN)/reliability
test: setup
	$(BIN)/python book/_ext/executions.py prepare $(CHAPTERS)
	$(BIN)/python -m pytest $(EXECUTED) tests $(EXECUTED_LAST) --nbmake --overwrite \
		--nbmake-timeout=300 -m "not rendered_book and not offline_book" \
		-n $(PYTEST_WORKERS) --dist load \
		--durations=12 -p no:cacheprovider

# ruff reads its settings (88 columns, the rule set) from pyproject.toml.
lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

book: setup
	mkdir -p $(MPLCONFIGDIR) && rm -f $(MPLCONFIGDIR)/fontlist-*.json
	$(BIN)/jupyter-book build . --all --builder html -W -n --keep-going; \
		status=$$?; echo "::: jupyter-book build took $$SECONDS s"; exit $$status
	@echo "HTML: $(CURDIR)/_build/html/index.html"

# Debian's chromium package for the browser check; needs root (CI runs as root) or sudo.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# The rendered pages in headless Chromium: figures and animations per page, no errors, warnings,
# machine paths or sideways-scrolling code, exercises in every chapter, resolved chapter links.
# Beside them, two chapters run as a reader without network or mirror runs them: their outputs
# show no warning, traceback or machine path (tests/test_offline_book.py).
check-book: book chromium
	$(BIN)/python -m pytest tests/test_rendered_book.py tests/test_offline_book.py \
		-m "rendered_book or offline_book" -n $(PYTEST_WORKERS) --dist loadfile -p no:cacheprovider -v
	@echo "screenshots: $(CURDIR)/_build/screenshots"

# Each benchmark's rows go to _build/benchmarks/NAME.json too: the Performance page shows them.
bench: setup
	$(BIN)/python -m benchmarks.report

clean:
	rm -rf _build $(TEST_RUN) $(NOTEBOOKS)
