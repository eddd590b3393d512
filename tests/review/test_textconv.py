"""Readable pointer diffs: the textconv driver through plain `git diff`, `git log -p` and `git show`,
its setup by `git model init` in a fresh clone, and the raw pointer diff (`--no-textconv`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import Repo, make_env, make_safetensors
from tests.review.helpers import MODEL, add, fine_tune, first_version

POINTER = f"{MODEL}.model.toml"
UNCHANGED = ("embed.weight", "head.weight", "layer0.bias", "layer0.weight")
CHANGED = ("layer1.weight", "layer2.weight")


def _changed_lines(patch: str) -> list[str]:
    return [line for line in patch.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def _fine_tuned_history(repo: Repo) -> None:
    v1 = first_version(repo)
    add(repo, fine_tune(v1, CHANGED), "--metric", "loss=0.25")
    repo.commit("fine-tune")


def _assert_summary_diff(patch: str) -> None:
    changed = _changed_lines(patch)
    for name in CHANGED:
        assert any(line.startswith(f"-tensor {name}: F32 [32, 32], 4.0 KiB, xxh3:") for line in changed), patch
        assert any(line.startswith(f"+tensor {name}: F32 [32, 32], 4.0 KiB, xxh3:") for line in changed), patch
    assert "-metric loss = 0.3" in changed and "+metric loss = 0.25" in changed
    assert not any(name in line for line in changed for name in UNCHANGED), patch
    assert not any("dtype = " in line for line in patch.splitlines()), "the raw pointer showed through"


def test_textconv_through_git_diff_log_and_show(committed_repo: Repo) -> None:
    repo = committed_repo
    assert repo.git("config", "--get", "diff.gitmodel.textconv").stdout.strip() == "git model textconv"
    _fine_tuned_history(repo)
    _assert_summary_diff(repo.git("diff", "HEAD~1", "HEAD").stdout)
    _assert_summary_diff(repo.git("log", "-p", "-1").stdout)
    _assert_summary_diff(repo.git("show", "HEAD").stdout)
    # staged and working-tree pointers go through the driver as well
    add(repo, fine_tune(first_version_arrays(repo), ("head.weight",), seed=5))
    staged = _changed_lines(repo.git("diff", "--cached").stdout)
    assert any(line.startswith("+tensor head.weight:") for line in staged), staged


def first_version_arrays(repo: Repo) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return dict(load_file(str(repo.path / MODEL)))


def test_raw_pointer_diff_holds_only_changed_tensors_and_metadata(committed_repo: Repo) -> None:
    repo = committed_repo
    _fine_tuned_history(repo)
    raw = repo.git("diff", "--no-textconv", "-U0", "HEAD~1", "HEAD").stdout
    old = repo.git("show", f"HEAD~1:{POINTER}").stdout.splitlines()
    new = repo.git("show", f"HEAD:{POINTER}").stdout.splitlines()

    def metadata_lines(lines: list[str]) -> set[str]:
        start = next(i for i, line in enumerate(lines) if line.startswith("[metadata"))
        return set(lines[start:])

    allowed_metadata = metadata_lines(old) | metadata_lines(new)
    changed = _changed_lines(raw)
    tensor_lines = [line for line in changed if "dtype = " in line]
    assert sorted(line[1:].split(" = ", 1)[0] for line in tensor_lines) == sorted(
        f'"{n}"' for n in CHANGED for _ in "-+"
    )
    file_lines = [line for line in changed if line[1:].startswith(("digest = ", "manifest = "))]
    assert len(file_lines) == 4  # the file's digest and manifest, old and new
    rest = [line for line in changed if line not in tensor_lines and line not in file_lines]
    assert rest and all(line[1:] in allowed_metadata for line in rest), rest
    assert not any(name in line for line in changed for name in UNCHANGED)


def test_a_fresh_clone_gets_the_driver_from_init(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    _fine_tuned_history(repo)
    clone = Repo(tmp_path / "clone", make_env(tmp_path / "home2"))
    repo.run("git", "clone", "-q", str(repo.path), str(clone.path), cwd=tmp_path)
    assert clone.git("config", "--get", "diff.gitmodel.textconv", check=False).stdout == ""
    assert "dtype = " in clone.git("diff", "HEAD~1", "HEAD").stdout  # raw until init
    clone.gm("init", "-q")
    assert clone.git("config", "--get", "diff.gitmodel.textconv").stdout.strip() == "git model textconv"
    _assert_summary_diff(clone.git("diff", "HEAD~1", "HEAD").stdout)


def test_textconv_leaves_other_files_as_they_are(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    odd = tmp_path / "x.model.toml"
    odd.write_text("not = [a pointer\nversion = 1\n")
    cp = repo.run("git", "model", "textconv", odd)
    assert cp.returncode == 0 and cp.stderr == "" and cp.stdout == odd.read_text()
    # a pointer of a directory model, as git hands a blob over: a temporary file of another name
    make_safetensors(repo.path / "dir" / "a.safetensors", {"w": (4, 4)})
    repo.gm("add", "-q", "dir")
    blob = tmp_path / "XyZ12_dir.model.toml"
    blob.write_bytes((repo.path / "dir.model.toml").read_bytes())
    out = repo.run("git", "model", "textconv", blob).stdout.splitlines()
    assert out[0].startswith("model dir: directory, 1 file(s), 1 tensors, ")
    assert out[1].startswith("file dir/a.safetensors: safetensors, ")
    assert out[2].startswith("tensor w: F32 [4, 4], 64 B, xxh3:")
