# Entry points used by the README and CI. Every target sets up first (idempotent, fast when done).
.PHONY: setup demo test bench bench-quick lint clean

setup:
	bash scripts/setup.sh --dev

demo: setup
	.venv/bin/spectralmatch demo --output-folder demo_output

test: setup
	.venv/bin/python -m pytest -q -p no:cacheprovider tests

bench: setup
	.venv/bin/python benchmarks/run.py

bench-quick: setup
	.venv/bin/python benchmarks/run.py --quick

lint: setup
	.venv/bin/ruff check spectralmatch tests benchmarks

clean:
	rm -rf build demo_output .pytest_cache
