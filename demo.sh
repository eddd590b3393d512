#!/usr/bin/env bash
# git-model demo: version a generated series of bf16 safetensors checkpoints in a throwaway repo:
# add with metadata, readable diffs, checkout, tags, stages, rollback, hooks, a remote and a fresh
# clone, training runs from Python, audit, du and fsck.
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
    run git model add model.safetensors --param learning_rate=0.0001 --param step=$((v * 1000)) -m "checkpoint v$v"
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

step "What the last fine-tune changed, as plain git diff shows it (the pointer's diff driver, set by init)"
run git --no-pager diff HEAD~1 -- '*.model.toml'
echo "--- the raw pointer diff: only the lines of the changed tensors and metadata"
git --no-pager diff --no-textconv --stat HEAD~1 -- '*.model.toml'

LAST=$((VERSIONS - 1))
step "Delete the weights, then restore them from the store"
run rm model.safetensors
run git model checkout
run cmp model.safetensors "$SERIES/v$LAST.safetensors"
echo "restored model.safetensors is byte-identical to v$LAST"

step "Label versions: semantic tags on the commits that hold the pointer"
run git model tag model 1.0.0 --rev "${REVS[0]}" -m "first training run"
# --auto reads what changed: tensors added/removed/reshaped = major, weights = minor, metadata = patch
run git model tag model --auto --rev "${REVS[1]}"
if [ "$VERSIONS" -gt 2 ]; then
    run git model tag model --auto --rev "${REVS[$LAST]}"
fi
run git model annotate model@v1.0.0 --metric accuracy=0.81 -m "holdout set 2026-11"
run git model annotate model@latest --metric accuracy=0.86 -m "holdout set 2026-11"
run git model log model

step "Review: what changed between two versions, in the weights and the metrics"
run git model diff model@v1.0.0 model@latest
run git model diff --stat model@v1.0.0 model@latest
run git model diff --numeric model@v1.1.0 model@v1.2.0   # how far the weights moved, from the store
run git model compare model

step "Stages: promote, promote again, roll back"
run git model promote model@v1.0.0 production -m "first release"
run git model promote model@latest production -m "better accuracy"
run git model rollback model production -m "latency regression in canary"
run git model stages model
run git model show model@production

step "A version's exact bytes, without moving HEAD or touching the working tree"
run git model checkout model@v1.0.0 -o "$WORK/v1.0.0"
run cmp "$WORK/v1.0.0/model.safetensors" "$SERIES/v0.safetensors"
echo "model@v1.0.0 is byte-identical to v0"

step "Weights follow git checkout once the hooks are installed"
run git model install-hooks
run git checkout -q "${REVS[0]}"
run cmp model.safetensors "$SERIES/v0.safetensors"
echo "after 'git checkout' of the first commit, model.safetensors is v0 again"
run git checkout -q main
run cmp model.safetensors "$SERIES/v$LAST.safetensors"
run git model status

step "Share: a Git origin for the pointers, a folder remote for the weights (S3 works the same way)"
run git init -q --bare -b main "$WORK/origin.git"
run git remote add origin "$WORK/origin.git"
run git model init >/dev/null   # again, now that there is a remote: tags and notes travel with git push
run git model remote add origin "$WORK/weights"
run git commit -q -m "Weights live in the shared folder" -- .gitmodel.toml
run git model push
run git push -q origin   # the branch, the version tags and the audit notes (refspecs set by init)
step "A teammate clones: git model pull is the one command that brings the weights"
run git clone -q "$WORK/origin.git" "$WORK/teammate"
(
    cd "$WORK/teammate"
    run git model pull   # no 'git model init' here: the first pull sets the clone up
    run cmp model.safetensors "$SERIES/v$LAST.safetensors"
    run git model log model
    run git log -p -1 --format='%h %s' -- model.safetensors.model.toml | sed -n 1,9p   # the pointer diff driver works in the clone too
)
echo "the clone's model.safetensors is byte-identical to v$LAST, and the versions came with it"

step "Training runs from Python: checkpoints on a ref of their own, never the branch or the index"
git status --porcelain >"$WORK/status.before"
cat >"$WORK/train.py" <<'PY'
import shutil, sys
import gitmodel

series, out, last = sys.argv[1], sys.argv[2], int(sys.argv[3])
run = gitmodel.Run("model", keep_last=2, keep_best=("val_loss", "min"))
for step in range(last + 1):
    ckpt = f"{out}/step-{step}.safetensors"
    shutil.copy(f"{series}/v{step}.safetensors", ckpt)  # what a training loop writes
    # stored on a thread: the loop goes on (a file changed before it is read would be an error)
    run.save(ckpt, step=step * 1000, metrics={"val_loss": 1.0 / (step + 1)}, background=True)
run.wait()
best = run.best()
print(f"run {run.id}: best step {best.step} (val_loss {best.metrics['val_loss']:.3f}) restored to {best.path}")
tensor = gitmodel.load_tensor("model@v1.0.0", "model.layers.0.self_attn.q_proj.weight")
print(f"one tensor of model@v1.0.0 read without a checkout: shape {tensor.shape}, dtype {tensor.dtype}")
PY
mkdir -p "$WORK/checkpoints"
run python "$WORK/train.py" "$SERIES" "$WORK/checkpoints" "$LAST"
run git model runs model
git status --porcelain >"$WORK/status.after"
cmp -s "$WORK/status.before" "$WORK/status.after" && echo "git status is as it was: the runs touched no branch, index or working-tree file"

step "The audit trail (Git notes, refs/notes/model): who did what, when and why"
run git model audit model
run git model audit --verify

step "Storage: what each version costs, and a full check of the store (every chunk, and every version whole)"
run git model du model
run git model fsck --files   # also rebuilds every version in memory and checks its BLAKE3 digest
total=0
for ((v = 0; v < VERSIONS; v++)); do
    total=$((total + $(stat -c %s "$SERIES/v$v.safetensors")))
done
store=$(du -sb .git/model | cut -f1)
awk -v t="$total" -v s="$store" -v n="$VERSIONS" 'BEGIN {
    mib = 1048576
    printf "%d checkpoints: %.1f MiB in all; the git model store (.git/model): %.1f MiB, %.1f%% of them\n", n, t / mib, s / mib, 100 * s / t
}'

step "Done"
echo "Benchmark against cp + sync and Git LFS at 512 MiB and 1 GiB: python benchmarks/run.py --repeat 3"
echo "Bytes stored against Git LFS, DVC and git-annex: python benchmarks/series.py (docs/benchmarks.md)"
