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

# The main job on the embedded defaults: SQLite, the outbox transport, the sample issue
# and subscribers. Sends never repeat, so a second run shows the send's status instead.
SAMPLE := issues/2021-02-01.yaml
# Exits 0 when `status --json` (on stdin) shows a finished send to the list "weekly".
export SENT_TO_WEEKLY := import json, sys; sends = json.load(sys.stdin)["sends"]; \
	sys.exit(not any(s["list"] == "weekly" and s["status"] == "sent" for s in sends))
demo: setup
	$(BIN)/newsletter check $(SAMPLE)
	$(BIN)/newsletter subscribers import subscribers/sample.csv --list weekly
	@if $(BIN)/newsletter status $(SAMPLE) --json | $(BIN)/python -c "$$SENT_TO_WEEKLY"; then \
		echo "The sample issue was already sent to the sample list; sends never repeat:"; \
		$(BIN)/newsletter status $(SAMPLE); \
	else \
		$(BIN)/newsletter send $(SAMPLE) --list weekly --yes; \
	fi

# Browsers, a database server, SpamAssassin (with spamd and spamc), Java (for the Nu HTML
# validator) and nginx (the reverse-proxy test) for the tests (Debian packages). Each
# binary is checked, so a second run installs nothing.
system-deps:
	@if [ ! -x /usr/bin/chromium ] || ! command -v pg_lsclusters >/dev/null \
		|| ! command -v spamassassin >/dev/null || ! command -v java >/dev/null \
		|| ! command -v spamc >/dev/null || [ ! -x /usr/sbin/spamd ] \
		|| [ ! -x /usr/sbin/nginx ]; then \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium fonts-dejavu-core \
			postgresql spamassassin spamd spamc default-jre-headless nginx; \
	fi

# The official MJML compiler (the tests validate the default templates with it, and
# bench/render.py compares against it) and the Nu HTML validator (vnu-jar).
$(MJML): bench/package.json
	npm install --prefix bench --no-audit --no-fund --loglevel=error
	touch $@

test: setup system-deps $(MJML)
	@eval "$$($(SUDO) .ci/postgres)" && $(BIN)/pytest

# Style (ruff) and types (mypy, at the strictness set in pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

# Each script prints its figures; docs/performance.md records them (see there). The
# database benchmarks run SQLite and PostgreSQL (started as for `make test`) side by side.
bench: setup system-deps $(MJML)
	$(BIN)/python bench/render.py
	$(BIN)/python bench/archive.py
	@eval "$$($(SUDO) .ci/postgres)" && \
		$(BIN)/python bench/import.py --database-url "$$NEWSLETTER_TEST_POSTGRES_URL" && \
		$(BIN)/python bench/send.py && \
		$(BIN)/python bench/webhook.py --database-url "$$NEWSLETTER_TEST_POSTGRES_URL"
