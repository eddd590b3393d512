"""`git model check`: one line per problem, `path: what is wrong`, exit 1 when any."""

from __future__ import annotations

import json
import re
import shutil

from tests.conftest import Repo, make_safetensors, make_torch_checkpoint
from tests.hooks.helpers import make_gguf, set_rules

P = "m.safetensors.model.toml"


def check(repo: Repo, *args: str) -> tuple[int, list[str]]:
    cp = repo.gm("check", *args, check=False)
    assert "Traceback" not in cp.stderr
    return cp.returncode, cp.stdout.splitlines()


def test_clean_staged_pointer_passes_silently(committed_repo: Repo) -> None:
    repo = committed_repo
    set_rules(repo)
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    repo.gm("add", "m.safetensors", "--metric", "accuracy=0.95")
    assert check(repo) == (0, [])
    assert check(repo, "m.safetensors") == (0, [])
    assert check(repo, ".") == (0, [])


def test_metadata_problems(committed_repo: Repo) -> None:
    repo = committed_repo
    set_rules(repo)
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    repo.gm("add", "m.safetensors")
    assert check(repo) == (1, [f"{P}: required metadata metrics.accuracy is missing "
                               "(record it: git model add PATH --metric accuracy=VALUE)"])
    repo.gm("add", "m.safetensors", "--metric", "accuracy=0.5")
    assert check(repo) == (1, [f"{P}: metrics.accuracy is 0.5, outside the bound metrics.accuracy >= 0.9"])


def test_tensor_lines_must_agree_with_the_manifest(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4), "b": (4,)})
    repo.gm("add", "m.safetensors")
    text = (repo.path / P).read_text()
    edited = re.sub(r'("w" = \{ dtype = )"F32"', r'\1"F16"', text)
    edited = re.sub(r'^"b" = .*\n', "", edited, flags=re.M)
    assert edited != text
    (repo.path / P).write_text(edited)
    repo.git("add", P)
    code, lines = check(repo)
    assert code == 1
    assert lines == [
        f"{P}: m.safetensors: tensor(s) 'b' in its manifest but missing from the pointer",
        f"{P}: m.safetensors: tensor(s) 'w' different in the pointer and its manifest (dtype, shape or digest)",
    ]


def test_data_missing_from_the_store(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    repo.gm("add", "m.safetensors")
    shutil.rmtree(repo.store / "objects")
    code, lines = check(repo)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"{P}: its data is not in this store")


def test_broken_newer_and_conflicted_pointers(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    repo.gm("add", "m.safetensors")
    good = (repo.path / P).read_text()
    cases = {
        good.replace('name = "m"', "name = 3"): f"{P}: broken pointer: 'name' must be a string",
        good.replace("version = 1", "version = 9"): f"{P}: pointer version 9 needs a newer git-model: pip install -U git-model",
        "<<<<<<< HEAD\n" + good + "=======\n" + good + ">>>>>>> other\n":
            f"{P}: has merge conflict markers; keep one side ('git checkout --ours {P}' or '--theirs'), "
            f"then 'git model checkout' and 'git add {P}'",
    }
    for text, line in cases.items():
        (repo.path / P).write_text(text)
        repo.git("add", P)
        assert check(repo) == (1, [line])


def test_raw_checkpoints_staged_as_blobs(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "w.safetensors", {"w": (4, 4)})
    make_gguf(repo.path / "llm.q8")  # no telling extension: its magic bytes say GGUF
    make_torch_checkpoint(repo.path / "ckpt.bin")  # a PyTorch zip named .bin
    (repo.path / "notes.txt").write_text("fine\n")
    repo.git("add", "w.safetensors", "llm.q8", "ckpt.bin", "notes.txt")
    code, lines = check(repo)
    assert code == 1
    assert lines == [
        "ckpt.bin: a raw PyTorch checkpoint is staged as a Git blob; run 'git rm --cached ckpt.bin' then 'git model add ckpt.bin'",
        "llm.q8: a raw GGUF checkpoint is staged as a Git blob; run 'git rm --cached llm.q8' then 'git model add llm.q8'",
        "w.safetensors: a raw safetensors checkpoint is staged as a Git blob; "
        "run 'git rm --cached w.safetensors' then 'git model add w.safetensors'",
    ]
    assert check(repo, "--raw-only", "notes.txt", "llm.q8")[1] == [lines[1]]
    repo.git("rm", "-q", "--cached", "w.safetensors", "llm.q8", "ckpt.bin")
    assert check(repo) == (0, [])


def test_size_threshold_from_the_config(committed_repo: Repo) -> None:
    repo = committed_repo
    set_rules(repo, 'version = 1\n[check]\nraw_size_threshold = "1 KiB"\n')
    (repo.path / "small.dat").write_bytes(b"x" * 1024)
    (repo.path / "big.dat").write_bytes(b"x" * 1025)
    repo.git("add", "small.dat", "big.dat")
    assert check(repo) == (1, [
        "big.dat: a 1025-byte file is staged as a Git blob (over check.raw_size_threshold = 1024); "
        "if it is a model, run 'git rm --cached big.dat' then 'git model add big.dat'"
    ])


def test_json_and_unknown_paths(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "w.safetensors", {"w": (2, 2)})
    repo.git("add", "w.safetensors")
    cp = repo.gm("check", "--json", check=False)
    assert cp.returncode == 1
    doc = json.loads(cp.stdout)
    assert [p["path"] for p in doc["problems"]] == ["w.safetensors"]
    assert check(repo, "nothing-here") == (1, ["nothing-here: no such file, directory or model"])


def test_a_bad_config_is_one_line(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / ".gitmodel.toml").write_text('version = 1\n[metadata]\nbounds = ["accuracy high"]\n')
    line = repo.gm_fails("check")
    assert line == "git model: error: .gitmodel.toml: metadata.bounds: 'accuracy high' is not KEY OP NUMBER, such as \"metrics.accuracy >= 0.9\""
