# Two commands on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
CHROMIUM ?= /usr/bin/chromium
REDIS_SERVER ?= redis-server
PROMTOOL ?= promtool

.PHONY: run demo test lint bench chromium redis-server prometheus clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The run deps include the project itself (editable), so that `$(VENV)/bin/vix-breaker` works after `make run`.
$(VENV)/.run-deps: requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.test-deps: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# The console listens on HOST:PORT, loopback only by default: `make run HOST=0.0.0.0` exposes it (docs/console.md).
# `python -m console` checks the settings first: a bad REDIS_URL is one line and exit 2, before anything is served.
HOST ?= 127.0.0.1
PORT ?= 8501
STREAMLIT_ARGS = --server.headless true --server.address $(HOST) --server.port $(PORT)

run: $(VENV)/.run-deps
	$(PY) -m console $(STREAMLIT_ARGS)

# The console plus a simulated fleet playing the tour scenario on its embedded server (docs/demo.md).
# The console starts the fleet and stops it when it stops (Ctrl-C): no process is left behind.
demo: $(VENV)/.run-deps
	env -u REDIS_URL BREAKER_DEMO=$${BREAKER_DEMO:-tour} $(PY) -m console $(STREAMLIT_ARGS)

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

# The protocol tests run on Redis 7.0 as well as Valkey 9: install Debian's redis-server when missing and we
# can (root + apt-get). The tests start it themselves on a free port, so the package's own service must not
# start: a policy-rc.d that forbids it (exit 101) for the install, and a systemd unit is stopped if one ran.
redis-server:
	@if ! command -v "$(REDIS_SERVER)" >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's redis-server for the Redis 7 protocol tests"; \
	    made_policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1; fi; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/tmp/vix-breaker-apt-redis.log 2>&1; \
	    status=$$?; if [ -n "$$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	    [ $$status = 0 ] || { echo "apt-get install redis-server failed, see /tmp/vix-breaker-apt-redis.log"; exit 1; }; \
	    if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then \
	      systemctl stop redis-server; systemctl disable --quiet redis-server; fi; \
	  else \
	    echo "redis-server is missing and cannot be installed here (need root and apt-get)."; \
	    echo "Install Debian's 'redis-server' package (Redis 7.0+), or set REDIS_SERVER=/path/to/redis-server."; exit 1; \
	  fi; \
	fi

# The alert rules' unit tests need promtool, and the end-to-end alerting test a real Prometheus and
# Alertmanager (tests/alerting/): install Debian's prometheus and prometheus-alertmanager when missing and we
# can (root + apt-get). The tests start both themselves on free ports, so the packages' services must not
# start: a policy-rc.d that forbids it (exit 101) for the install, and systemd units are stopped if they ran.
prometheus:
	@if ! command -v "$(PROMTOOL)" >/dev/null || ! command -v prometheus >/dev/null \
	    || ! command -v prometheus-alertmanager >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's prometheus and prometheus-alertmanager for the alerting tests"; \
	    made_policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1; fi; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager) \
	      >/tmp/vix-breaker-apt-prometheus.log 2>&1; \
	    status=$$?; if [ -n "$$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	    [ $$status = 0 ] || { echo "apt-get install prometheus failed, see /tmp/vix-breaker-apt-prometheus.log"; exit 1; }; \
	    for unit in prometheus prometheus-alertmanager; do \
	      if command -v systemctl >/dev/null && systemctl is-active --quiet $$unit 2>/dev/null; then \
	        systemctl stop $$unit; systemctl disable --quiet $$unit; fi; \
	    done; \
	  else \
	    echo "promtool, prometheus or prometheus-alertmanager is missing and cannot be installed here (need root and apt-get)."; \
	    echo "Install Debian's 'prometheus' and 'prometheus-alertmanager' packages."; exit 1; \
	  fi; \
	fi

lint: $(VENV)/.test-deps
	$(PY) -m ruff check .

test: $(VENV)/.test-deps chromium redis-server prometheus lint
	CHROMIUM=$(CHROMIUM) REDIS_SERVER=$(REDIS_SERVER) $(PY) -m pytest

bench: $(VENV)/.test-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
