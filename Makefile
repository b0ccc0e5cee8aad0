# Bedside — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install install-test lock pwa system-deps lint bench clean journey-screenshots

TEST_STAMP := $(VENV)/.test-installed-stamp

# Serving needs the package only; the test tools (Playwright, moto, schemathesis, mypy)
# come with `make test`. Both install the versions pinned in requirements.lock.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q -c requirements.lock -e ".[test]"
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

# Re-pin requirements.lock from a fresh environment of pyproject.toml's ranges.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q -e ".[test]"
	{ echo "# Python dependencies as tested: pip installs with these as constraints (make run, make test)."; \
	  echo "# Refresh after changing pyproject.toml: make lock"; \
	  .lock-venv/bin/pip freeze --exclude-editable; } > requirements.lock
	rm -rf .lock-venv

# System packages the tests need: a CJK font for the approval PDF, Chromium for browser
# tests. Installed only when missing and only where apt-get can run (CI, a fresh machine).
system-deps:
	@missing=""; \
	test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || missing="$$missing fonts-wqy-microhei"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing system packages (install them with apt-get):$$missing"; fi; \
	fi

# The PWA is built into pwa/dist and served at / (skipped until pwa/package.json exists).
# `npm ci` installs exactly the lock file (which lists every platform's optional rollup
# build) and never rewrites it.
pwa:
	@if [ -f pwa/package.json ]; then \
	  cd pwa && (test -d node_modules || npm ci --no-audit --no-fund) && npm run build; \
	fi

run: install pwa
	$(BIN)/bedside migrate
	$(BIN)/bedside seed-demo
	$(BIN)/bedside serve --host 127.0.0.1 --port 8000

test: install-test system-deps pwa
	$(BIN)/pytest -q

# Style, the import contracts (pyproject.toml [tool.importlinter]) and types; run by CI.
lint: install-test
	$(BIN)/ruff check api bots notifications sync integrations tests bench
	$(BIN)/ruff format --check api bots notifications sync integrations tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy api/domain

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The journeys' screenshots (surgeon, approver, therapist), taken by their browser tests.
journey-screenshots: install pwa
	BEDSIDE_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/browser/test_surgeon_journey.py tests/browser/test_approver_journey.py tests/browser/test_therapist_journey.py tests/browser/test_therapist_scan.py

clean:
	rm -rf $(VENV) pwa/node_modules pwa/dist bedside.db var
