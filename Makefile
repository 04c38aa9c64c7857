# Everyday tasks. `make demo` installs and starts the app; `make test` installs and runs the tests.
# Both create .venv in the repo and are safe to run again: the install step is skipped while the
# requirement files are unchanged.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQS := requirements.txt requirements-dev.txt constraints.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQS) 2>/dev/null | sha1sum | cut -c1-12)
TINY := .cache/tiny-bundle
PYTEST_FLAGS ?= -q -ra

.PHONY: help install demo demo-tiny serve test test-slow test-browser screenshot lint format bench bench-gpu tiny weights clean mutate soak

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(STAMP): $(REQS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -c constraints.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)  ## create .venv and install everything (skipped when up to date)

weights: install  ## fetch the default model weights into weights/ (needs the Hugging Face Hub)
	$(PY) -m fashion_rag weights download

demo: install  ## install, fetch weights where the Hub is reachable, build the example index, start the app
	@$(PY) -m fashion_rag weights download || echo "(continuing without the missing weights: the app says what works)"
	$(PY) app.py $(ARGS)

demo-tiny: install tiny  ## start the app offline with the tiny random-weight bundle (pictures are noise)
	$(PY) app.py --models $(TINY) $(ARGS)

serve: install  ## serve mode: the page over a Ray Serve pool of edit workers, one per GPU (docs/DEPLOYMENT.md)
	$(PY) app.py --serve $(ARGS)

tiny: install  ## build the tiny bundle into .cache/tiny-bundle
	@test -f $(TINY)/bundle.json || $(PY) -m fashion_rag weights make-tiny $(TINY)

test: install  ## run the test suite (what CI runs)
	$(PY) -m pytest $(PYTEST_FLAGS) -m "not slow and not browser"

test-slow: install  ## the slow tests: load test, 1,000-request soak, browser tests
	$(PY) -m pytest $(PYTEST_FLAGS) -m "slow or browser"; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

soak: install  ## the 1,000-request memory soak of the server (about 4 min)
	$(PY) -m pytest $(PYTEST_FLAGS) -m soak tests/test_load.py

screenshot: install  ## refresh docs/screenshot.png from the browser test (tiny bundle; the test alone writes to a temp folder)
	STUDIO_SCREENSHOT=$(CURDIR)/docs/screenshot.png $(PY) -m pytest $(PYTEST_FLAGS) -m browser tests/test_browser.py

mutate: install  ## plant single-rule deviations from docs/recipe.md in a scratch copy; fails unless tests catch all
	$(PY) tools/mutate.py $(ARGS)

lint: install  ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install  ## apply ruff formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install  ## CPU benchmarks (each prints its table)
	@for script in benchmarks/bench_*_cpu.py; do echo "== $$script"; $(PY) $$script || exit 1; done

bench-gpu: install  ## GPU benchmark with full-size random weights (needs CUDA)
	$(PY) benchmarks/bench_gpu_edit.py

clean:  ## remove caches and outputs (keeps .venv and weights/)
	rm -rf .cache outputs .pytest_cache .ruff_cache
