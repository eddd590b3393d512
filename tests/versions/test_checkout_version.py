"""`git model checkout NAME@REF`: a version's bytes, HEAD untouched; -o DIR; --pointer makes a rollback a commit."""

from __future__ import annotations

from conftest import Repo, sha256
from versions.conftest import MODEL, as_json


def version_bytes(repo: Repo, rev: str, tmp: str) -> str:
    """sha256 of the model at `rev`, rebuilt by plain `git model checkout` in a scratch worktree-free way."""
    out = repo.path.parent / tmp
    repo.gm("checkout", f"sentiment@{rev}", "-o", out)
    return sha256(out / "model.safetensors")


def test_checkout_a_version_into_the_working_tree_keeps_head(three: Repo) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    head = repo.git("rev-parse", "HEAD").stdout.strip()
    current = sha256(repo.path / MODEL)
    cp = repo.gm("checkout", "sentiment@v1.0.0")
    assert cp.stdout == f"restored {MODEL}\n"
    assert repo.git("rev-parse", "HEAD").stdout.strip() == head
    assert repo.porcelain() == []  # the pointer is untouched
    assert sha256(repo.path / MODEL) != current
    assert as_json(repo, "status")["models"][0]["state"] == "out of date"  # another version the store holds
    repo.gm("checkout", "sentiment@HEAD")  # back, by commit-ish: git-model wrote the file, no --force needed
    assert sha256(repo.path / MODEL) == current
    assert repo.gm("checkout", "sentiment@HEAD").stdout == "1 model file(s) already up to date\n"


def test_output_dir_and_no_clobber(three: Repo) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    out = repo.path.parent / "out"
    doc = as_json(repo, "checkout", "sentiment@v1.0.0", "-o", out)
    assert doc["restored"] == [(out / "model.safetensors").as_posix()] and doc["version"] == "1.0.0"
    first = sha256(out / "model.safetensors")
    (out / "model.safetensors").write_bytes(b"mine")
    line = repo.gm_fails("checkout", "sentiment@HEAD", "-o", out)
    assert line == f"git model: error: {(out / 'model.safetensors').as_posix()}: exists with other bytes; use --force to overwrite it"
    assert (out / "model.safetensors").read_bytes() == b"mine"
    repo.gm("checkout", "sentiment@v1.0.0", "-o", out, "--force")
    assert sha256(out / "model.safetensors") == first


def test_local_changes_in_the_working_tree_are_kept(three: Repo) -> None:
    repo = three
    (repo.path / MODEL).write_bytes(b"edited by hand")
    line = repo.gm_fails("checkout", "sentiment@HEAD~1")
    assert line.startswith(f"git model: error: {MODEL}: local changes would be overwritten")
    assert (repo.path / MODEL).read_bytes() == b"edited by hand"
    repo.gm("checkout", "sentiment@HEAD~1", "--force")
    assert (repo.path / MODEL).read_bytes() != b"edited by hand"


def test_rollback_through_pointer_and_commit_restores_byte_identical_weights(three: Repo) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    repo.gm("tag", "sentiment", "2.0.0")
    v1 = version_bytes(repo, "v1.0.0", "v1")
    pointer_v1 = repo.git("show", f"HEAD~2:{MODEL}.model.toml").stdout
    cp = repo.gm("checkout", "sentiment@v1.0.0", "--pointer")
    assert cp.stdout.splitlines()[-1] == (f"restored and staged {MODEL}.model.toml; commit it to make this version current")
    assert repo.staged() == {f"{MODEL}.model.toml"}
    repo.commit("sentiment: back to v1.0.0")
    assert repo.pointer(MODEL) == pointer_v1
    assert sha256(repo.path / MODEL) == v1
    assert repo.gm("status").stdout.startswith("clean")
    # the rollback commit is an ordinary commit: a fresh checkout of it gives the same bytes
    (repo.path / MODEL).unlink()
    repo.gm("checkout", "-q")
    assert sha256(repo.path / MODEL) == v1


def test_pointer_with_uncommitted_edits_is_refused(three: Repo) -> None:
    repo = three
    pointer = repo.path / (MODEL + ".model.toml")
    pointer.write_text(pointer.read_text() + "\n[metadata]\nnote = \"mine\"\n")
    line = repo.gm_fails("checkout", "sentiment@HEAD~1", "--pointer")
    assert line == (f"git model: error: {MODEL}.model.toml has changes that are not committed; "
                    "commit them, or use --force to replace them")
    assert "mine" in pointer.read_text()


def test_usage_errors(three: Repo) -> None:
    cp = three.gm("checkout", "sentiment", "-o", "out", check=False)
    assert cp.returncode == 2 and "NAME@REF" in cp.stderr
    assert three.gm_fails("checkout", "sentiment@v1.0.0", "-o", "out", "--pointer") == \
        "git model: error: --pointer restores the pointer in the working tree; it cannot be used with -o"


def test_a_path_with_an_at_sign_is_still_a_path(committed_repo: Repo) -> None:
    from conftest import SMALL_TENSORS, make_safetensors

    repo = committed_repo
    make_safetensors(repo.path / "ckpt@step10.safetensors", SMALL_TENSORS)
    repo.gm("add", "-q", "ckpt@step10.safetensors")
    repo.commit("a model whose file name has an @")
    before = sha256(repo.path / "ckpt@step10.safetensors")
    (repo.path / "ckpt@step10.safetensors").unlink()
    repo.gm("checkout", "ckpt@step10.safetensors")  # the model's path, though the file is missing
    assert sha256(repo.path / "ckpt@step10.safetensors") == before
