#!/usr/bin/env bash
# The test command: install everything, then lint, type-check and run every test tier.
# Extra arguments go to pytest (e.g. `infra/test.sh -m "not browser"`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/install.sh
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest "$@"
