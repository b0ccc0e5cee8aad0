# Bedside — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install pwa system-deps lint bench clean journey-screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

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

test: install system-deps pwa
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check api bots notifications sync integrations tests bench
	$(BIN)/mypy api/domain

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The journeys' screenshots (surgeon, approver), taken by their browser tests.
journey-screenshots: install pwa
	BEDSIDE_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/browser/test_surgeon_journey.py tests/browser/test_approver_journey.py

clean:
	rm -rf $(VENV) pwa/node_modules pwa/dist bedside.db var
