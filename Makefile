# couponmix: the two commands a newcomer needs are `make demo` and `make test`.
# Both create .venv on first use with the versions pinned in constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-full lint bench examples docs-examples browser clean-venv

$(STAMP): constraints.txt pyproject.toml requirements/obp-deps.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -r requirements/obp-deps.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,dask,lint,fast]'
	@# obp 0.5.7 declares Python < 3.11 and pins 2022 versions; its code runs on the pinned set above.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python obp==0.5.7
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/couponmix run market --out reports/demo --tol 0.5

# the report's browser test needs Debian's chromium: installed here when missing
browser:
	@.ci/install-chromium

# lint, types (configured in pyproject.toml), the import layers (.ci/check_layers.py) and function length
# (.ci/check_shape.py); `make test` runs them first, so CI enforces them
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python .ci/check_layers.py
	$(BIN)/python .ci/check_shape.py

test: $(STAMP) browser lint
	$(BIN)/python -m pytest -n 2 --dist worksteal -q --durations=12

# the edit-test loop: everything but the Monte Carlo and browser tests
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -m "not montecarlo and not browser and not slow"

test-full: $(STAMP) browser
	COUPONMIX_MC_SCALE=full $(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_objectives.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_predict.py

# regenerate reports/examples/ (example reports, the batch of example studies, the screenshots), then rerun
# every command example in README.md and docs/ and check its output
examples: $(STAMP) browser
	$(BIN)/python reports/make_examples.py
	$(BIN)/python docs/examples.py

# rewrite the outputs of the README's and docs/' command examples after a change that moves them
docs-examples: $(STAMP)
	$(BIN)/python docs/examples.py --update

clean-venv:
	rm -rf $(VENV)
