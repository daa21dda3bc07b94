# Two commands on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
CHROMIUM ?= /usr/bin/chromium

.PHONY: run demo test lint bench chromium clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.test-deps: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.run-deps
	$(PY) -m streamlit run app.py --server.headless true

# The console plus a simulated fleet playing the tour scenario on its embedded server (docs/demo.md).
# The console starts the fleet and stops it when it stops (Ctrl-C): no process is left behind.
demo: $(VENV)/.run-deps
	env -u REDIS_URL BREAKER_DEMO=$${BREAKER_DEMO:-tour} $(PY) -m streamlit run app.py --server.headless true

# Browser tests use Debian's Chromium: install it when missing and we can (root + apt-get).
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/tmp/vix-breaker-apt.log 2>&1 \
	      || { echo "apt-get install chromium failed, see /tmp/vix-breaker-apt.log"; exit 1; }; \
	  else \
	    echo "Chromium is missing at $(CHROMIUM) and cannot be installed here (need root and apt-get)."; \
	    echo "Install Debian's 'chromium' package, or set CHROMIUM=/path/to/chromium."; exit 1; \
	  fi; \
	fi

lint: $(VENV)/.test-deps
	$(PY) -m ruff check .

test: $(VENV)/.test-deps chromium lint
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest

bench: $(VENV)/.test-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
