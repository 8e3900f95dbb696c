# The two commands the README starts with:
#   make demo   set up a virtualenv and run Limelight's main job end to end (DuckDB + sample world)
#   make test   set up a virtualenv with the test extras and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo test venv venv-test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

venv: $(PY)
	$(PIP) install -q -c constraints.txt -e .

venv-test: $(PY)
	$(PIP) install -q -c constraints.txt -e '.[deep,ann,test]'

demo: venv
	$(VENV)/bin/limelight demo

test: venv-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q

lint: venv-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache limelight-demo
