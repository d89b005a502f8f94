# The two commands: `make up` runs the platform, `make test` runs every test.
.PHONY: up test lint bench clean

up:
	scripts/bootstrap.sh
	.venv/bin/datalibrary up

test:
	scripts/test.sh

lint:
	.venv/bin/ruff check .

bench:
	scripts/bootstrap.sh --test
	.venv/bin/python benchmarks/run_all.py

clean:
	rm -rf .venv .datalibrary .pytest_cache .ruff_cache
