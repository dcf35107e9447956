# DAG Sync: every target installs what it needs into .venv (and SAM CLI into .venv-sam).
PYTHON ?= $(shell command -v python3.13 || echo $(HOME)/.pyenv/versions/3.13.0/bin/python3.13)
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed

.PHONY: install install-sam lint typecheck unit check integration infra-check test demo bench sim local clean

$(STAMP): requirements-dev.txt layers/dagsync/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	printf '%s\n' "$(CURDIR)" "$(CURDIR)/layers/dagsync" "$(CURDIR)/functions/dag_sync" \
		> "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/dagsync-dev.pth"
	touch $(STAMP)

install: $(STAMP)

$(SAM_STAMP): requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $(SAM_STAMP)

install-sam: $(SAM_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy layers/dagsync/dagsync functions/dag_sync/app.py emulators bench sim

unit: $(STAMP)
	$(BIN)/pytest -q -n 2 tests/unit

# The inner loop: lint, types and the unit tests, in well under a minute.
check: lint typecheck unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

infra-check: $(STAMP) $(SAM_STAMP)
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --template template.yaml --build-dir .aws-sam/build
	$(BIN)/python -m tests.infra.translate --output .aws-sam/translated.json
	cmp -s requirements-checkov.txt .venv-checkov/requirements-checkov.txt || { \
	  { test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov; } && \
	  .venv-checkov/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt && \
	  cp requirements-checkov.txt .venv-checkov/requirements-checkov.txt; }
	.venv-checkov/bin/checkov --file .aws-sam/translated.json --framework cloudformation \
	  --skip-download --quiet --compact

# Branch coverage of the core package is measured on this one run (named here, so processes the
# tests start measure it too) and gated by [tool.coverage.report] fail_under in pyproject.toml.
test: lint typecheck infra-check
	$(BIN)/pytest -q -n 2 --cov=dagsync tests

demo: $(STAMP)
	$(BIN)/python -m demo

bench: $(STAMP)
	$(BIN)/python -m bench

# 30 simulated days on 5 seeds, two seeds at a time (docs/simulation.md); exits 1 on a violation.
SIM_DAYS ?= 30
SIM_JOBS ?= 2
sim: $(STAMP)
	$(BIN)/python -m sim --seeds 1,2,3,4,5 --minutes $$(( $(SIM_DAYS) * 1440 )) --jobs $(SIM_JOBS)

# The emulators and moto on the host, env.local.json, and the `sam local invoke` line per event.
local: $(STAMP)
	$(BIN)/python -m emulators.sam_local

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
