# Two commands for a new user (see README.md):
#   make demo   install into .venv, draw the test pattern on the default device, write svga-demo.png
#   make test   install into .venv (with test tools), run ruff and the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-packages lab bench lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/svga demo --out svga-demo.png

lint: $(STAMP)
	$(BIN)/ruff check .

# The Debian packages the tests need (scripts/test-packages.txt): installed as root, else named.
test-packages:
	scripts/install-test-packages

# Everything: unit tests, qtest differential tests against QEMU, and the guest lab.
test: test-packages lint
	$(BIN)/pytest

# Only the fast tests: no QEMU, no guest.
test-fast: lint
	$(BIN)/pytest -m "not qemu and not lab"

# Only the guest lab (root, the lab's Debian packages: svga lab setup).
lab: $(STAMP)
	$(BIN)/pytest -m lab

# The benchmark table: the model and QEMU through qtest side by side (writes bench/results.md).
bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) svga-demo.png .pytest_cache
