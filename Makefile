# detente task runner. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast lint bench bench-quick browser chromium-if-root clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/detente demo --out demo-out

# The one test command (README and CI both call it). Browser tests need Debian's chromium:
# run as root, `make test` installs it when missing (as .ci/run does); otherwise the browser
# tests fail naming the command (`sudo make browser`); DETENTE_SKIP_BROWSER=1 skips them
# on a developer machine, never in CI.
test: $(STAMP) chromium-if-root
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)

chromium-if-root:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	  >/dev/null; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	@for b in bench/*.py; do case $$b in bench/_*) continue;; esac; \
	  echo "== $$b"; $(BIN)/python $$b || exit 1; done

bench-quick: $(STAMP)
	@for b in bench/*.py; do case $$b in bench/_*) continue;; esac; \
	  echo "== $$b --quick"; $(BIN)/python $$b --quick || exit 1; done

browser:
	command -v chromium >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

clean:
	rm -rf $(VENV) demo-out bench/.venvs .pytest_cache .mypy_cache .ruff_cache
