#!/usr/bin/env bash
# git-model demo: version a generated series of bf16 safetensors checkpoints in a throwaway repo.
#
#   ./demo.sh                       3 versions x ~64 MiB
#   DEMO_SIZE_MIB=256 DEMO_VERSIONS=4 ./demo.sh
#   KEEP=1 ./demo.sh                keep the demo repository afterwards
#   DEMO_NO_INSTALL=1 ./demo.sh     use the python and git-model already on PATH (no venv, no pip)
#
# Outside a virtualenv it creates .venv in this repository and installs git-model there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SIZE_MIB="${DEMO_SIZE_MIB:-64}"
VERSIONS="${DEMO_VERSIONS:-3}"
PYTHON="${PYTHON:-python3}"

step() { printf '\n==> %s\n' "$*"; }
run() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }

if [ "$VERSIONS" -lt 2 ]; then
    echo "DEMO_VERSIONS must be at least 2" >&2
    exit 2
fi
if ! command -v git >/dev/null 2>&1; then
    echo "git is not installed: apt-get install git" >&2
    exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/git-model-demo.XXXXXX")"
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

step "Python environment"
if [ "${DEMO_NO_INSTALL:-0}" != 1 ]; then
    if [ -z "${VIRTUAL_ENV:-}" ]; then
        if [ ! -x "$ROOT/.venv/bin/python" ]; then
            if ! "$PYTHON" -m venv "$ROOT/.venv"; then
                echo "could not create a virtualenv: apt-get install python3-venv" >&2
                exit 2
            fi
        fi
        # shellcheck disable=SC1091
        source "$ROOT/.venv/bin/activate"
    fi
    printf '$ python -m pip install %s numpy safetensors\n' "$ROOT"
    if ! python -m pip install -q --disable-pip-version-check "$ROOT" numpy safetensors >"$WORK/pip.log" 2>&1; then
        cat "$WORK/pip.log" >&2
        exit 1
    fi
    # Some pip configurations warn about every absent local index; only the rest is news.
    grep -v '^WARNING: Location' "$WORK/pip.log" || true
fi
echo "using $(command -v python) ($(python --version 2>&1))"
command -v git-model >/dev/null || { echo "git-model is not on PATH: pip install $ROOT" >&2; exit 1; }

SERIES="$WORK/series"
REPO="$WORK/repo"

step "Generate $VERSIONS checkpoints of ~$SIZE_MIB MiB (v0 = base, each later version rewrites 2 of 100 layers)"
run python "$ROOT/benchmarks/generate.py" "$SERIES" --size-mib "$SIZE_MIB" --versions "$VERSIONS" --check

step "Create a Git repository and set up git model"
mkdir -p "$REPO"
cd "$REPO"
run git init -q -b main
git config user.name "git-model demo"
git config user.email "demo@example.invalid"
git config commit.gpgsign false
run git model init
run git commit -q -m "Set up git model"
git log --oneline

declare -a REVS=()
for ((v = 0; v < VERSIONS; v++)); do
    step "Version $v: copy the checkpoint in, git model add, git commit"
    cp "$SERIES/v$v.safetensors" model.safetensors
    run git model add model.safetensors
    run git commit -q -m "Checkpoint v$v"
    REVS+=("$(git rev-parse HEAD)")
    if [ "$v" -eq 0 ]; then
        echo "--- first lines of the pointer Git versions instead of the weights:"
        head -n 12 model.safetensors.model.toml
        echo "--- .gitignore beside the model:"
        cat .gitignore
    fi
done

step "git model status"
run git model status

step "What the last fine-tune changed, as Git sees it (pointer diff)"
git --no-pager diff --stat HEAD~1
git --no-pager diff HEAD~1 -- '*.model.toml' >"$WORK/pointer.diff"
head -n 40 "$WORK/pointer.diff"

LAST=$((VERSIONS - 1))
step "Delete the weights, then restore them from the store"
run rm model.safetensors
run git model checkout
run cmp model.safetensors "$SERIES/v$LAST.safetensors"
echo "restored model.safetensors is byte-identical to v$LAST"

step "Go back to the first version"
run git checkout "${REVS[0]}" -- model.safetensors.model.toml
# no --force: the file there is exactly what git-model restored, so it is not a local change
run git model checkout model
run cmp model.safetensors "$SERIES/v0.safetensors"
echo "model.safetensors is byte-identical to v0"
run git model status

step "Storage"
total=0
for ((v = 0; v < VERSIONS; v++)); do
    total=$((total + $(stat -c %s "$SERIES/v$v.safetensors")))
done
store=$(du -sb .git/model/objects | cut -f1)
store_disk=$(du -sk .git/model/objects | cut -f1)
awk -v t="$total" -v s="$store" -v d="$store_disk" -v n="$VERSIONS" 'BEGIN {
    mib = 1048576
    printf "%d checkpoints: %.1f MiB in all\n", n, t / mib
    printf "git model store (.git/model/objects): %.1f MiB (%.1f MiB on disk), %.1f%% of the checkpoints\n", s / mib, d * 1024 / mib, 100 * s / t
}'

step "Done"
echo "Benchmark against cp and Git LFS: python benchmarks/run.py --size-mib 1024 --versions 5"
