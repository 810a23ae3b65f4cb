# Task runner. `make demo` and `make test` are the README's two set-up commands.
PY := .venv/bin/python
SETUP := bash scripts/setup.sh

.PHONY: setup demo test test-fast lint format typecheck env bench clean

setup:
	$(SETUP)

demo: setup  ## install, then train the flagship on the embedded corpus, evaluate, query, plot
	$(PY) -m projects.custom_transformer.train --config projects/custom_transformer/configs/tiny.yaml
	$(PY) -m projects.custom_transformer.evaluate
	$(PY) tools/query_experiments.py --best bits_per_byte --top 5 \
		--plot assets/outputs/plots/custom_transformer_best.png
	@echo "plot written to assets/outputs/plots/custom_transformer_best.png"

test: setup lint typecheck  ## install, quality gates, whole test suite
	$(PY) -m pytest -q

test-fast: ## tests without the slow marker (no set-up)
	$(PY) -m pytest -q -m "not slow"

lint:
	$(PY) -m ruff check .
	$(PY) -m black --check -q .

format:
	$(PY) -m ruff check --fix -q .
	$(PY) -m black -q .

typecheck:
	$(PY) -m mypy common/

env:
	$(PY) tools/test_env.py

bench:
	$(PY) benchmarks/bench_experiment_store.py
	$(PY) benchmarks/bench_custom_transformer.py

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache
