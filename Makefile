# popup_mgr: `make run` serves the product with demo data, `make test` runs every test.
# Both install what they need: a virtualenv in .venv, the pinned browser files from the npm
# registry, and (for tests, as root) Debian's browsers.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check
# The first install takes a minute: pip names each package as it goes (progress bars off, so a
# log stays readable), and every step announces itself.
PIP_SHOWN := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: run test install vendor browsers bench clean embed

run: install
	$(BIN)/popup-mgr quickstart

test: install $(VENV)/.test-installed browsers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(VENV)/.installed vendor

$(VENV)/.installed: requirements.txt setup.cfg pyproject.toml
	@echo "==> [1/3] Python environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] Installing the pinned Python packages (about a minute the first time)"
	@$(PIP_SHOWN) install --progress-bar off -r requirements.txt
	@echo "==> [3/3] Installing popup_mgr itself"
	@$(PIP) install --no-deps -e .
	@touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt requirements-reference.txt
	$(PIP) install -r requirements-test.txt
	$(PIP) install --no-deps -r requirements-reference.txt
	touch $@

vendor: popup_mgr/static/vendor/.copied

node_modules/.installed: package.json package-lock.json
	@echo "==> Installing the pinned browser files (htmx, Chart.js) from npm"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

popup_mgr/static/vendor/.copied: node_modules/.installed scripts/vendor.sh
	bash scripts/vendor.sh
	touch $@

# Rebuild embed/popup.min.js (committed; served as /popup.js) after editing embed/popup.js.
embed: node_modules/.installed
	bash scripts/build-embed.sh

browsers:
	bash scripts/install-browsers.sh

bench: install $(VENV)/.test-installed
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) node_modules popup_mgr/static/vendor
