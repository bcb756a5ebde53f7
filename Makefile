# The two commands a newcomer needs: `make run` (set up and start) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: install run test bench pyz

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/flask --app clobus_consult init-token
	$(BIN)/flask --app clobus_consult db upgrade
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# The whole suite on SQLite, then again on PostgreSQL when a server answers on 127.0.0.1:5432.
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
	$(BIN)/python scripts/pytest-postgres.py -q

bench: install
	$(BIN)/python bench/http_bench.py

# One file for a server: the app, its dependencies and gunicorn (docs/install-vps.md).
pyz: install
	scripts/build-pyz.sh
