# Two commands: `make run` (set up what is missing, then start everything) and `make test` (the whole suite).
# Everything else here is a step of those two, usable on its own.

SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV   := .venv
PY     := $(VENV)/bin/python
RASA   := $(VENV)/bin/rasa
MODEL  := models/billing.tar.gz
STAMP  := $(VENV)/.installed-stamp

export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore::DeprecationWarning
# Rasa reports usage and errors to its makers unless told not to: nothing leaves this machine.
export RASA_TELEMETRY_ENABLED := false

# What a trained model depends on: retrain only when one of these changed.
MODEL_INPUTS := config.yml domain.yml $(wildcard knowledge/*.yml) $(shell find bot/data -name '*.yml') \
                bot/build.py bot/policies.py bot/slots.py $(wildcard bot/nlu/*.py) core/topics.py core/text.py \
                core/language.py core/knowledge.py $(STAMP)

.PHONY: run cluster haproxy test setup install db db-quiet demo-users token triage mailroom-once tickets outbox agent-add demo-agents translations build train validate test-stories pytest bench lock clean shell lint

run: setup
	@$(PY) -m runner

# Every service as replicas behind HAProxy, on PostgreSQL (DATABASE_URL) and Redis (REDIS_URL): docs/deployment.md
cluster: setup haproxy
	@$(PY) -m runner.cluster

# Debian's HAProxy, for `make cluster` and its tests (installed when missing; root, as in CI).
haproxy:
	@command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || { \
	  echo "installing HAProxy (Debian's package)..." >&2; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy \
	    >/dev/null; } || { echo "make: could not install HAProxy: run 'apt-get install haproxy' as root"; exit 1; }; }

setup: install db $(MODEL)

install: $(STAMP)

$(STAMP): requirements.txt constraints.txt
	@py=$$(scripts/find-python310) || { \
	  echo "make: Python 3.10 is required (Rasa 3.6 runs on 3.8-3.10) and none was found on PATH or in pyenv."; \
	  echo "      Install it (e.g. 'pyenv install 3.10.13') or point PYTHON310 at one: make PYTHON310=/path/to/python3.10"; \
	  exit 1; }; \
	echo "creating $(VENV) with $$py and installing the locked dependencies (first time: about 3 minutes)..." >&2; \
	test -x $(PY) || $$py -m venv $(VENV) || { echo "make: could not create $(VENV) with $$py"; exit 1; }; \
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt || { \
	  echo "make: installing the dependencies failed (see pip's message above). Check the network access to PyPI,"; \
	  echo "      then run 'make install' again; 'rm -rf $(VENV)' starts from scratch."; exit 1; }
	@touch $@

# Migrate the store, and seed the demo accounts when it has none.
db: install
	@$(PY) -m core.db.migrate upgrade
	@$(PY) -m core.demo seed

# One JSON object per demo portal user (email, account, role, language, last invoice, balance).
demo-users: db-quiet
	@$(PY) -m core.demo users

# A fresh identity token for a portal user: make -s token USER=marie.tremblay@boulangerietremblay.ca
token: db-quiet
	@$(PY) -m core.identity token "$(USER)"

# Triage one message offline: one JSON object on stdout, nothing stored or sent. make -s triage EML=path/to/file.eml
triage: db-quiet
	@test -n "$(EML)" || { echo "usage: make -s triage EML=path/to/message.eml" >&2; exit 2; }
	@$(PY) -m mailroom triage "$(EML)"

# The mailroom without the chat servers: one pass, or the latest tickets.
mailroom-once: db
	@$(PY) -m mailroom once

tickets: db-quiet
	@$(PY) -m mailroom tickets $(ARGS)

# Create an agent of the console and print its generated password once:
# make -s agent-add EMAIL=jane@net2phone.ca NAME="Jane Roy" TEAM=CA ROLE=agent [LANGUAGES=en,fr]
agent-add: db-quiet
	@test -n "$(EMAIL)" -a -n "$(NAME)" -a -n "$(TEAM)" || { \
	  echo 'usage: make -s agent-add EMAIL=jane@net2phone.ca NAME="Jane Roy" TEAM=CA ROLE=agent [LANGUAGES=en,fr]' >&2; exit 2; }
	@$(PY) -m console agent-add --email "$(EMAIL)" --name "$(NAME)" --team "$(TEAM)" --role "$(or $(ROLE),agent)" \
	  --languages "$(or $(LANGUAGES),en,fr)"

# The demo agents `make run` creates on an empty store: one JSON object per line (email, password, team, role, language).
demo-agents: db-quiet
	@$(PY) -m console demo-agents

# After changing a text of the console: extract its messages and merge them into the French catalog to translate.
translations: install
	@$(VENV)/bin/pybabel extract -F console/babel.cfg -k _ -k gettext -k ngettext:1,2 --no-location \
	  --omit-header --sort-output -o console/translations/messages.pot .
	@$(VENV)/bin/pybabel update -i console/translations/messages.pot -d console/translations --no-fuzzy-matching
	@echo "translate the empty msgstr of console/translations/fr/LC_MESSAGES/messages.po"

# Mail not (yet) sent: pending, in doubt, failed, suppressed, with errors. make -s outbox ARGS=--json (or --all)
outbox: db-quiet
	@$(PY) -m mailroom outbox $(ARGS)

# `make db` without its messages, for targets whose output scripts read.
db-quiet: install
	@$(PY) -m core.db.migrate upgrade >/dev/null
	@$(PY) -m core.demo seed >/dev/null

build: install
	@$(PY) -m bot.build

$(MODEL): $(MODEL_INPUTS)
	@$(PY) -m bot.build
	@mkdir -p var/log
	@echo "training the Rasa model (about a minute; log: var/log/train.log)..."
	@$(RASA) train --config config.yml --domain build/domain --data bot/data build/data --out models \
	  --fixed-model-name billing > var/log/train.log 2>&1 || { tail -n 30 var/log/train.log; \
	  echo "make: training failed; the full log is var/log/train.log"; exit 1; }
	@touch $@
	@echo "model ready: $(MODEL)"

train: $(MODEL)

validate: build
	@$(PY) -m bot.validate

test-stories: $(MODEL)
	@$(RASA) test core --e2e --model $(MODEL) --stories tests/stories --out var/test-results \
	  --fail-on-prediction-errors > var/log/test-stories.log 2>&1 || { tail -n 40 var/log/test-stories.log; \
	  echo "make: Rasa test stories failed; see var/test-results/failed_test_stories.yml"; exit 1; }
	@echo "rasa test: every test story passed ($$(grep -c '^ *- story:' tests/stories/*.yml | awk -F: '{s+=$$2} END {print s}') stories)"

pytest: setup
	@$(PY) -m pytest

lint: install
	@$(VENV)/bin/ruff check core bot runner mailroom console tests bench scripts
	@$(VENV)/bin/mypy

test: setup
	@$(MAKE) --no-print-directory lint
	@$(PY) -m core.knowledge
	@$(MAKE) --no-print-directory validate
	@$(MAKE) --no-print-directory test-stories
	@$(MAKE) --no-print-directory pytest

bench: setup
	@$(PY) bench/nlu_eval.py

lock:
	@py=$$(scripts/find-python310) || { echo "make: Python 3.10 is required"; exit 1; }; \
	tmp=$$(mktemp -d); $$py -m venv $$tmp/venv && \
	$$tmp/venv/bin/pip install -q --disable-pip-version-check -r requirements.txt && \
	{ echo "# Lock file: every installed package at its exact version (pip freeze of a clean install of requirements.txt)."; \
	  echo "# Regenerate with: make lock"; $$tmp/venv/bin/pip freeze --exclude-editable; } > constraints.txt; \
	status=$$?; rm -rf $$tmp; test $$status -eq 0 && echo "constraints.txt regenerated from a clean install of requirements.txt"

clean:
	rm -rf build models var/test-results

# Chat in the terminal (with `make run` running in another terminal for the action server).
shell: setup
	@$(RASA) shell --model $(MODEL) --endpoints $$(test -f var/endpoints.yml && echo var/endpoints.yml || echo endpoints.yml) --port 5006
