#!/usr/bin/env bash
# Install git-model and everything its tests need into .venv, then run the tests.
# Usage: bash tests/run.sh [pytest args...]     (a fresh machine needs only python3, pip, git)
# The tests run in parallel, one pytest-xdist worker per core, a test file per worker at a time
# (module fixtures are built once); add `-n 0` for one serial process (--pdb, profiling).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# torch only to write real PyTorch checkpoints in tests; the CPU build is enough.
.venv/bin/python -m pip install -q -e '.[test]' 'torch==2.13.0' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import gitmodel, torch, safetensors, gguf' # fail here, clearly, if an install did not take
export PATH="$PWD/.venv/bin:$PATH"
# Thousands of `git model` processes start in a run: with PYTHONDONTWRITEBYTECODE set (some shells
# and CI images set it) each would compile gitmodel's modules again, 0.1 CPU-s of every `add`.
unset PYTHONDONTWRITEBYTECODE
.venv/bin/python -m compileall -q gitmodel >/dev/null
.venv/bin/python -m mypy gitmodel
exec .venv/bin/python -m pytest -q -n auto --dist loadfile "$@"
