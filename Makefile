# Task runner. `make demo` and `make test` are the README's two set-up commands.
PY := .venv/bin/python
SETUP := bash scripts/setup.sh

.PHONY: setup system-deps demo test test-fast lint format typecheck env bench clean

setup:
	$(SETUP)

demo: setup  ## install, then train the flagship on the embedded corpus, evaluate, query, plot
	$(PY) -m projects.custom_transformer.train --config projects/custom_transformer/configs/tiny.yaml
	$(PY) -m projects.custom_transformer.evaluate
	$(PY) tools/query_experiments.py --best bits_per_byte --top 5 \
		--plot assets/outputs/plots/custom_transformer_best.png
	@echo "plot written to assets/outputs/plots/custom_transformer_best.png"
	@echo "see the runs in your browser: $(PY) tools/view_experiments.py  (then open http://127.0.0.1:8765/)"

# Debian's faketime: the store's skewed-clock tests run writers under it (skipped without it).
# Debian's chromium: the dashboard's browser tests drive it with Playwright (skipped without it).
system-deps:
	@command -v faketime >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update -qq && apt-get install -y -qq faketime) >/dev/null 2>&1 \
				|| echo "system-deps: could not install faketime; its tests will be skipped"; \
		else echo "system-deps: faketime missing (apt-get install faketime); its tests will be skipped"; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
				|| echo "system-deps: could not install chromium; the dashboard's browser tests will be skipped"; \
		else echo "system-deps: chromium missing (apt-get install chromium); the dashboard's browser tests will be skipped"; fi; }

test: setup system-deps lint typecheck  ## install, quality gates, whole test suite
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
	$(PY) benchmarks/bench_view_experiments.py

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache
