# Two commands do everything on a fresh Debian machine:
#   make demo   set up, then send the sample issue to the sample subscribers (outbox)
#   make test   set up (including Chromium and PostgreSQL), then run the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MJML := bench/node_modules/.bin/mjml
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test lint system-deps bench

$(BIN)/newsletter: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/newsletter

demo: setup
	@.ci/demo

# Browsers and a database server for the tests (Debian packages).
system-deps:
	@if [ ! -x /usr/bin/chromium ] || ! command -v pg_lsclusters >/dev/null; then \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium postgresql; \
	fi

# The official MJML compiler: the tests validate the default templates with it,
# and bench/render.py compares against it.
$(MJML): bench/package.json
	npm install --prefix bench --no-audit --no-fund --loglevel=error
	touch $@

test: setup system-deps $(MJML)
	@eval "$$($(SUDO) .ci/postgres)" && $(BIN)/pytest

lint: setup
	$(BIN)/ruff check .

bench: setup $(MJML)
	$(BIN)/python bench/render.py
