"""`git model add`: pointers written and staged, the model ignored, bad paths refused."""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

from conftest import (
    SMALL_TENSORS,
    Repo,
    make_hf_model,
    make_npz,
    make_safetensors,
    make_torch_checkpoint,
    new_repo,
    sha256,
    tensor_lines,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_pointer(repo: Repo, model_rel: str) -> dict[str, Any]:
    return tomllib.loads(repo.pointer(model_rel))


# -- a file -------------------------------------------------------------------------------
def test_add_file_writes_pointer_and_ignores_the_model(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "models" / "tiny" / "model.safetensors"
    arrays = make_safetensors(model, SMALL_TENSORS, seed=1)

    cp = repo.gm("add", "models/tiny/model.safetensors")

    assert cp.stderr == ""
    assert "added as 'model'" in cp.stdout
    assert "staged models/tiny/model.safetensors.model.toml" in cp.stdout
    pointer = load_pointer(repo, "models/tiny/model.safetensors")
    assert pointer["version"] == 1
    assert pointer["name"] == "model"
    assert pointer["kind"] == "file"
    assert pointer["size"] == model.stat().st_size
    [entry] = pointer["files"]
    assert entry["path"] == "model.safetensors"
    assert entry["size"] == model.stat().st_size
    assert entry["format"] == "safetensors"
    assert entry["digest"].startswith("blake3:") and entry["manifest"].startswith("blake3:")
    assert "warning" not in entry
    assert sorted(entry["tensors"]) == sorted(arrays)
    assert entry["tensors"]["embed.weight"]["dtype"] == "F32"
    assert entry["tensors"]["embed.weight"]["shape"] == [256, 64]
    # the pointer and the .gitignore beside the model are staged; the model is not
    assert repo.staged() == {"models/tiny/model.safetensors.model.toml", "models/tiny/.gitignore"}
    assert (repo.path / "models/tiny/.gitignore").read_text().splitlines() == ["/model.safetensors"]
    assert repo.porcelain() == ["A  models/tiny/.gitignore", "A  models/tiny/model.safetensors.model.toml"]
    repo.git("check-ignore", "-q", "models/tiny/model.safetensors")
    assert "models/tiny/model.safetensors" not in repo.tracked()


def test_add_from_a_subdirectory_with_a_relative_path(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "models" / "m.safetensors", {"w": (8, 8)})

    repo.gm("add", "m.safetensors", cwd=repo.path / "models")

    assert repo.staged() == {"models/m.safetensors.model.toml", "models/.gitignore"}
    assert load_pointer(repo, "models/m.safetensors")["files"][0]["path"] == "m.safetensors"


def test_add_several_paths_at_once(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "a.safetensors", {"w": (8, 8)}, seed=1)
    make_safetensors(repo.path / "b.safetensors", {"w": (8, 8)}, seed=2)

    cp = repo.gm("add", "a.safetensors", "b.safetensors")

    assert "added as 'a'" in cp.stdout and "added as 'b'" in cp.stdout
    assert repo.staged() == {"a.safetensors.model.toml", "b.safetensors.model.toml", ".gitignore"}
    ignore = (repo.path / ".gitignore").read_text().splitlines()
    assert "/a.safetensors" in ignore and "/b.safetensors" in ignore


def test_pointer_is_byte_identical_in_two_fresh_repositories(tmp_path: Path) -> None:
    first = new_repo(tmp_path / "first", tmp_path / "home")
    second = new_repo(tmp_path / "second", tmp_path / "home")
    make_safetensors(first.path / "m.safetensors", SMALL_TENSORS, seed=7)
    shutil.copyfile(first.path / "m.safetensors", second.path / "m.safetensors")

    first.gm("add", "m.safetensors")
    second.gm("add", "m.safetensors")

    # [metadata] records each repository's own commit and the time of the add (docs/metadata.md)
    assert (first.path / "m.safetensors.model.toml").read_bytes().split(b"\n[metadata")[0] == (
        second.path / "m.safetensors.model.toml"
    ).read_bytes().split(b"\n[metadata")[0]
    assert first.objects() == second.objects()


def test_readd_unchanged_writes_nothing_new(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", SMALL_TENSORS, seed=1)
    repo.gm("add", "m.safetensors")
    repo.commit("add m")
    pointer = (repo.path / "m.safetensors.model.toml").read_bytes()
    objects = repo.objects()

    cp = repo.gm("add", "m.safetensors")

    assert cp.stdout.strip() == "m.safetensors: unchanged (m.safetensors.model.toml)"
    assert (repo.path / "m.safetensors.model.toml").read_bytes() == pointer
    assert repo.objects() == objects
    assert repo.porcelain() == []


def test_readd_modified_file_changes_only_that_tensor(committed_repo: Repo) -> None:
    repo = committed_repo
    tensors = {f"block{i}.weight": (128, 512) for i in range(4)}
    arrays = make_safetensors(repo.path / "m.safetensors", tensors, seed=1)
    repo.gm("add", "m.safetensors")
    repo.commit("v1")
    old = repo.pointer("m.safetensors")
    arrays["block2.weight"] = arrays["block2.weight"] + np.float32(1.0)
    make_safetensors(repo.path / "m.safetensors", arrays)

    cp = repo.gm("add", "--json", "m.safetensors")

    new = repo.pointer("m.safetensors")
    old_lines, new_lines = tensor_lines(old), tensor_lines(new)
    assert old_lines.keys() == new_lines.keys() == {f'"{name}"' for name in tensors}
    assert {k for k in old_lines if old_lines[k] != new_lines[k]} == {'"block2.weight"'}
    assert load_pointer(repo, "m.safetensors")["files"][0]["digest"] != tomllib.loads(old)["files"][0]["digest"]
    assert repo.staged() == {"m.safetensors.model.toml"}
    [added] = json.loads(cp.stdout)["added"]
    assert added["pointer_changed"] is True
    # only the changed tensor's bytes are new in the store (plus the small header)
    assert 0 < added["bytes_written"] < added["size"] / 2


def test_readd_keeps_the_name_given_first(committed_repo: Repo) -> None:
    repo = committed_repo
    arrays = make_safetensors(repo.path / "m.safetensors", {"w": (8, 8)}, seed=1)
    repo.gm("add", "--name", "sentiment", "m.safetensors")
    arrays["w"][0, 0] += 1
    make_safetensors(repo.path / "m.safetensors", arrays)

    repo.gm("add", "m.safetensors")

    assert load_pointer(repo, "m.safetensors")["name"] == "sentiment"


def test_pointer_diff_names_the_file_whose_tensors_changed(committed_repo: Repo) -> None:
    repo = committed_repo
    llm = repo.path / "llm"
    make_hf_model(llm, seed=1)
    repo.gm("add", "-q", "llm")
    repo.commit("v1")
    # fine-tuning the head: same shapes, new values in one tensor of the second shard
    shard = llm / "model-00002-of-00002.safetensors"
    tensors = load_file(str(shard))
    tensors["lm_head.weight"] = tensors["lm_head.weight"] * np.float32(0.5)
    make_safetensors(shard, tensors)
    repo.gm("add", "-q", "llm")

    diff = repo.git("diff", "--cached", "--no-textconv", "llm.model.toml").stdout  # the raw pointer

    hunks = diff.split("\n@@ ")[1:]
    tensor_hunks = [h for h in hunks if '"lm_head.weight"' in h]
    assert tensor_hunks, diff
    wanted = 'path = "llm/model-00002-of-00002.safetensors"'
    for hunk in tensor_hunks:
        header, body = hunk.split("\n", 1)
        # Git names a hunk after the last xfuncname match above it; when the hunk itself
        # starts at the file's table, the path is the first lines of its body instead.
        before_change = body.split("\n-", 1)[0]
        assert header.endswith(wanted) or f"\n {wanted}\n" in "\n" + before_change, hunk
        changed = [line for line in body.splitlines() if line[:1] in "+-"]
        assert all("lm_head.weight" in line or line[1:].startswith(("digest", "manifest")) for line in changed), hunk


def test_readd_after_touch_keeps_the_pointer(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    make_safetensors(model, SMALL_TENSORS, seed=1)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("add")
    objects = repo.objects()
    os.utime(model, (1_000_000_000, 1_000_000_000))  # new mtime, same bytes

    cp = repo.gm("add", "m.safetensors")

    assert "unchanged" in cp.stdout
    assert repo.porcelain() == []
    assert repo.objects() == objects


def test_add_an_empty_file(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "empty.bin").write_bytes(b"")

    repo.gm("add", "empty.bin")
    repo.commit("empty")
    (repo.path / "empty.bin").unlink()
    repo.gm("checkout")

    assert (repo.path / "empty.bin").read_bytes() == b""
    [entry] = load_pointer(repo, "empty.bin")["files"]
    assert entry["size"] == 0


def test_add_files_with_awkward_names(committed_repo: Repo) -> None:
    repo = committed_repo
    names = ["my model #1 [v2]!.bin", "*star.bin", " lead.bin", "trail .bin", "модель.bin", "!bang.bin", "#hash.bin"]
    for i, name in enumerate(names):
        (repo.path / name).write_bytes(os.urandom(100 + i))
    hashes = {name: sha256(repo.path / name) for name in names}

    repo.gm("add", "-q", *names)

    # every model is ignored (by its own escaped line), every pointer staged
    status = repo.git("status", "--porcelain", "-z", "--untracked-files=all").stdout.split("\0")
    assert sorted(e for e in status if e) == sorted(["M  .gitignore"] + [f"A  {n}.model.toml" for n in names])
    repo.commit("awkward")
    for name in names:
        (repo.path / name).unlink()
    repo.gm("checkout")
    assert {name: sha256(repo.path / name) for name in names} == hashes


# -- names --------------------------------------------------------------------------------
def test_default_name_comes_from_the_file_name(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "resnet50.fp16.safetensors", {"w": (4, 4)})
    make_safetensors(repo.path / "my model (v2).safetensors", {"w": (4, 4)}, seed=2)

    repo.gm("add", "resnet50.fp16.safetensors", "my model (v2).safetensors")

    assert load_pointer(repo, "resnet50.fp16.safetensors")["name"] == "resnet50"
    name = load_pointer(repo, "my model (v2).safetensors")["name"]
    assert name.startswith("my-model-")
    assert all(c.isalnum() or c in "._-" for c in name)


def test_name_option_sets_the_name(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})

    cp = repo.gm("add", "--name", "sentiment-v1.2_b", "m.safetensors")

    assert "added as 'sentiment-v1.2_b'" in cp.stdout
    assert load_pointer(repo, "m.safetensors")["name"] == "sentiment-v1.2_b"


def test_json_output_lists_the_added_model(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    make_safetensors(model, SMALL_TENSORS)

    cp = repo.gm("add", "--json", "m.safetensors")

    doc = json.loads(cp.stdout)
    [added] = doc["added"]
    assert added["name"] == "m"
    assert added["model_path"] == "m.safetensors"
    assert added["pointer_path"] == "m.safetensors.model.toml"
    assert added["files"] == 1
    assert added["size"] == model.stat().st_size
    assert added["pointer_changed"] is True
    assert added["warnings"] == []
    assert cp.stderr == ""


def test_quiet_prints_nothing(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})

    cp = repo.gm("add", "-q", "m.safetensors")

    assert cp.stdout == "" and cp.stderr == ""
    assert (repo.path / "m.safetensors.model.toml").is_file()


# -- a directory --------------------------------------------------------------------------
def test_add_directory_model(committed_repo: Repo) -> None:
    repo = committed_repo
    names = make_hf_model(repo.path / "models" / "tiny-llm")
    (repo.path / "models" / "tiny-llm" / "sub").mkdir()
    (repo.path / "models" / "tiny-llm" / "sub" / "generation_config.json").write_text("{}\n")

    cp = repo.gm("add", "models/tiny-llm/")  # the trailing slash a shell completion adds

    assert "added as 'tiny-llm'" in cp.stdout
    pointer = load_pointer(repo, "models/tiny-llm")
    assert pointer["kind"] == "directory"
    assert pointer["name"] == "tiny-llm"
    paths = [f["path"] for f in pointer["files"]]
    expected = sorted([f"tiny-llm/{n}" for n in names] + ["tiny-llm/sub/generation_config.json"])
    assert paths == expected
    assert pointer["size"] == sum(f["size"] for f in pointer["files"])
    by_path = {f["path"]: f for f in pointer["files"]}
    for shard in ("tiny-llm/model-00001-of-00002.safetensors", "tiny-llm/model-00002-of-00002.safetensors"):
        assert by_path[shard]["format"] == "safetensors"
        assert len(by_path[shard]["tensors"]) == 2
    assert set(by_path["tiny-llm/model-00002-of-00002.safetensors"]["tensors"]) == {
        "lm_head.weight", "model.layers.1.mlp.weight",
    }
    for f in pointer["files"]:
        assert f["size"] == (repo.path / "models" / f["path"]).stat().st_size
    assert repo.staged() == {"models/tiny-llm.model.toml", "models/.gitignore"}
    assert (repo.path / "models/.gitignore").read_text().splitlines() == ["/tiny-llm"]
    repo.git("check-ignore", "-q", "models/tiny-llm/config.json")


# -- formats ------------------------------------------------------------------------------
def test_add_pytorch_checkpoint(committed_repo: Repo) -> None:
    repo = committed_repo
    make_torch_checkpoint(repo.path / "ckpt.pt", seed=4)

    repo.gm("add", "ckpt.pt")

    [entry] = load_pointer(repo, "ckpt.pt")["files"]
    assert entry["format"] == "pytorch"
    assert entry["tensors"], "the storages of a PyTorch checkpoint are listed"
    for t in entry["tensors"].values():
        assert t["dtype"] == "storage"
        assert len(t["shape"]) == 1 and t["shape"][0] > 0
    assert sum(t["shape"][0] for t in entry["tensors"].values()) == (32 * 16 + 32 + 100 * 16) * 4


def test_add_npz(committed_repo: Repo) -> None:
    repo = committed_repo
    make_npz(repo.path / "arrays.npz", seed=4)

    repo.gm("add", "arrays.npz")

    [entry] = load_pointer(repo, "arrays.npz")["files"]
    assert entry["format"] == "npz"
    assert entry["tensors"]["weights"]["dtype"] == "F32"
    assert entry["tensors"]["weights"]["shape"] == [16, 8]
    assert entry["tensors"]["steps"]["dtype"] == "I64"
    assert entry["tensors"]["steps"]["shape"] == [10]
    lines = tensor_lines(repo.pointer("arrays.npz"))
    assert set(lines) == {'"steps"', '"weights"'}


def _damage_header_length(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:8] = struct.pack("<Q", len(data) * 10)
    path.write_bytes(bytes(data))


def _damage_offsets(path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + os.urandom(64))


def test_add_damaged_safetensors_stores_it_as_opaque(committed_repo: Repo) -> None:
    repo = committed_repo
    for name, damage in (("len.safetensors", _damage_header_length), ("offsets.safetensors", _damage_offsets)):
        model = repo.path / name
        make_safetensors(model, SMALL_TENSORS, seed=2)
        damage(model)
        original = sha256(model)

        cp = repo.gm("add", name)

        lines = cp.stderr.splitlines()
        assert len(lines) == 1, cp.stderr
        assert "warning" in lines[0] and name in lines[0]
        assert "Traceback" not in cp.stderr
        [entry] = load_pointer(repo, name)["files"]
        assert entry["format"] == "opaque"
        assert entry["warning"]
        assert "tensors" not in entry
        repo.commit(f"add {name}")
        model.unlink()
        repo.gm("checkout", name)
        assert sha256(model) == original


# -- refusals -----------------------------------------------------------------------------
def _refused(repo: Repo, *args: str, cwd: Path | None = None) -> str:
    staged = repo.staged()
    line = repo.gm_fails("add", *args, cwd=cwd)
    assert repo.staged() == staged
    assert not list(repo.path.rglob("*.model.toml"))
    return line


def test_refuses_a_path_outside_the_repository(committed_repo: Repo, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "m.safetensors"
    make_safetensors(outside, {"w": (4, 4)})

    line = _refused(committed_repo, str(outside))

    assert "outside the repository" in line
    assert not (outside.parent / "m.safetensors.model.toml").exists()


def test_refuses_a_tracked_file(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    repo.git("add", "m.safetensors")

    line = repo.gm_fails("add", "m.safetensors")

    assert "git rm --cached m.safetensors" in line
    assert not (repo.path / "m.safetensors.model.toml").exists()
    assert repo.staged() == {"m.safetensors"}


def test_refuses_a_tracked_directory(committed_repo: Repo) -> None:
    repo = committed_repo
    make_hf_model(repo.path / "llm")
    repo.git("add", "llm")
    repo.commit("oops, weights in git")

    line = repo.gm_fails("add", "llm")

    assert "git rm -r --cached llm" in line
    assert not (repo.path / "llm.model.toml").exists()
    assert repo.porcelain() == []


def test_refuses_a_missing_path(committed_repo: Repo) -> None:
    line = _refused(committed_repo, "nothing-here.safetensors")
    assert "nothing-here.safetensors" in line and "does not exist" in line


def test_refuses_a_symlink(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "real.safetensors", {"w": (4, 4)})
    (repo.path / "link.safetensors").symlink_to("real.safetensors")

    line = _refused(repo, "link.safetensors")

    assert "symbolic link" in line


def test_refuses_a_directory_holding_a_symlink(committed_repo: Repo) -> None:
    repo = committed_repo
    make_hf_model(repo.path / "llm")
    (repo.path / "llm" / "alias.json").symlink_to("config.json")

    line = _refused(repo, "llm")

    assert "symbolic link" in line and "alias.json" in line


def test_refuses_an_empty_directory(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "empty" / "nested").mkdir(parents=True)

    line = _refused(repo, "empty")

    assert "empty directory" in line


def test_refuses_a_pointer_file(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    repo.gm("add", "m.safetensors")
    pointer = (repo.path / "m.safetensors.model.toml").read_bytes()

    line = repo.gm_fails("add", "m.safetensors.model.toml")

    assert "is a pointer" in line and "m.safetensors" in line
    assert (repo.path / "m.safetensors.model.toml").read_bytes() == pointer
    assert not (repo.path / "m.safetensors.model.toml.model.toml").exists()


def test_refuses_the_git_directory(committed_repo: Repo) -> None:
    line = _refused(committed_repo, ".git/config")
    assert ".git/config" in line


def test_refuses_an_invalid_name(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    for bad in ("_leading", ".hidden", "has space", "slash/name", "x" * 101, ""):
        line = _refused(repo, "--name", bad, "m.safetensors")
        assert "not a valid model name" in line, bad
    assert repo.objects() == set()


_COUNT_DECODES = """
import sys
from gitmodel import pointer
from gitmodel.cli import main

calls = []
real = pointer.decode
pointer.decode = lambda data, where: calls.append(where) or real(data, where)
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
print("DECODED", len(calls))
"""


def test_add_decodes_the_pointer_it_writes_once_and_an_unchanged_one_not_again(repo: Repo) -> None:
    # a pointer of 800 tensors takes ~7 ms to decode: add checks the one it writes once, and
    # the command reuses that check for the schema instead of reading the file back
    make_safetensors(repo.path / "m.safetensors", {f"t{i}": (4, 4) for i in range(20)})
    decoded = [repo.run(sys.executable, "-c", _COUNT_DECODES, "add", "-q", "m.safetensors").stdout for _ in range(2)]
    assert decoded == ["DECODED 1\n", "DECODED 1\n"]  # new; re-added unchanged (the old one's decode serves)
    make_safetensors(repo.path / "m.safetensors", {f"t{i}": (4, 4) for i in range(20)}, seed=3)
    out = repo.run(sys.executable, "-c", _COUNT_DECODES, "add", "-q", "m.safetensors").stdout
    assert out == "DECODED 2\n"  # the old pointer, and the new one before it is written
    pointer = tomllib.loads((repo.path / "m.safetensors.model.toml").read_text())
    assert pointer["files"][0]["tensors"]["t0"]["shape"] == [4, 4]
