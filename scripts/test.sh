#!/usr/bin/env bash
# The whole test suite: lint, then pytest on SQLite and, when reachable, PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test

pg_url="${DATALIBRARY_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
if .venv/bin/python - "$pg_url" <<'PY' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(sys.argv[1].replace("postgresql+psycopg", "postgresql"), connect_timeout=3).close()
PY
then
  export DATALIBRARY_TEST_POSTGRES_URL="$pg_url"
  echo "test: PostgreSQL at ${pg_url%%\?*} is part of this run"
else
  echo "test: PostgreSQL not reachable; running on SQLite only"
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check src tests benchmarks >/dev/null 2>&1 || echo "test: note: 'ruff format' would reformat some files"
exec .venv/bin/python -m pytest "$@"
