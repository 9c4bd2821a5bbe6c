# Two commands for a new user (see README.md):
#   make demo   install into .venv, draw the test pattern on the default device, write svga-demo.png
#   make test   install into .venv (with test tools), run ruff and the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-packages lab bench lint fuzz clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all,test]'
	-$(BIN)/python -m svga.native  # the compiled cores (svga/native.py); without a C compiler the Python code runs
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

# The one benchmark table (bench/run.py): every figure beside its limit, measured in one run
# (model, driver, screenshots, start-up, QEMU through qtest, a C baseline, the lab guest...);
# writes bench/results.json, bench/results.md, bench/results.png. The guest rows need root and
# the lab (svga lab setup); without them they are a note. BENCH_ARGS="--quick --only guest".
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The fuzzers for longer (README "Hostile input"): hypothesis with every budget times
# FUZZ_SCALE, then atheris (coverage-guided, installed here if missing) FUZZ_SECONDS per target.
FUZZ_SCALE ?= 20
FUZZ_SECONDS ?= 120
FUZZ_TARGETS := script bin hid hid-class packet png needle
fuzz: $(STAMP)
	SVGA_FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/pytest -q tests/test_fuzz_svga.py tests/test_fuzz_vmmouse.py
	$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/pip install -q atheris
	for t in $(FUZZ_TARGETS); do \
		$(BIN)/python tests/hostile/fuzz_atheris.py $$t -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=fuzz-crash-$$t- || exit 1; \
	done

clean:
	rm -rf $(VENV) svga-demo.png .pytest_cache
