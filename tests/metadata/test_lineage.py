"""--data records the data's own version where it has one (git-model, DVC, Git LFS, Git), else a digest."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import blake3

from tests.conftest import Repo, make_safetensors

TENSORS = {"w": (4, 8)}


def data_of(repo: Repo) -> dict:
    return tomllib.loads(repo.pointer("m.safetensors"))["metadata"]["data"]


def add_with(repo: Repo, *data: str) -> dict:
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    args = [a for d in data for a in ("--data", d)]
    repo.gm("add", "m.safetensors", *args)
    return data_of(repo)


def test_unversioned_folder_gets_the_documented_digest(committed_repo: Repo) -> None:
    repo = committed_repo
    folder = repo.path / "datasets" / "reviews"
    (folder / "split").mkdir(parents=True)
    (folder / "a.csv").write_bytes(b"text,label\nok,1\n")
    (folder / "split" / "b.csv").write_bytes(b"text,label\nbad,0\n")
    record = add_with(repo, "train=datasets/reviews")["train"]
    listing = "".join(
        f"{blake3.blake3((folder / rel).read_bytes()).hexdigest()}  {rel}\n" for rel in ("a.csv", "split/b.csv")
    )
    assert record == {
        "source": "folder", "path": "datasets/reviews", "files": 2, "size": 16 + 17,
        "digest": "blake3:" + blake3.blake3(listing.encode()).hexdigest(),
    }
    (folder / "split" / "b.csv").write_bytes(b"text,label\nbad,1\n")  # one byte of data changes the digest
    make_safetensors(repo.path / "m.safetensors", TENSORS, seed=5)
    repo.gm("add", "m.safetensors", "--data", "train=datasets/reviews")
    assert data_of(repo)["train"]["digest"] != record["digest"]


def test_unversioned_file_and_default_name(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "eval.jsonl").write_bytes(b'{"x": 1}\n')
    data = add_with(repo, "eval.jsonl")
    assert data == {"eval": {"source": "file", "path": "eval.jsonl", "size": 9,
                             "digest": "blake3:" + blake3.blake3(b'{"x": 1}\n').hexdigest()}}


def test_a_git_model_pointer_is_recorded_by_its_digests(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "data" / "embeddings.safetensors", {"e": (16, 4)})
    repo.gm("add", "data/embeddings.safetensors")
    digest = tomllib.loads(repo.pointer("data/embeddings.safetensors"))["files"][0]["digest"]
    for given in ("data/embeddings.safetensors", "data/embeddings.safetensors.model.toml"):
        record = add_with(repo, f"emb={given}")["emb"]
        assert record == {"source": "git-model", "path": "data/embeddings.safetensors", "model": "embeddings",
                          "digests": [digest]}


def test_a_dvc_tracked_folder_is_recorded_by_its_dvc_version(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "corpus").mkdir()
    (repo.path / "corpus" / "x.txt").write_text("not hashed by us\n")
    # what `dvc add corpus` writes (DVC 3 layout)
    (repo.path / "corpus.dvc").write_text(
        "outs:\n- md5: 3863d0e317dee0a55c4e59d2ec0eef33.dir\n  size: 17\n  nfiles: 1\n  hash: md5\n  path: corpus\n"
    )
    for given in ("corpus", "corpus.dvc"):
        record = add_with(repo, f"train={given}")["train"]
        assert record == {"source": "dvc", "path": "corpus", "md5": "3863d0e317dee0a55c4e59d2ec0eef33.dir",
                          "size": 17, "nfiles": 1}


def test_a_broken_dvc_file_is_one_clear_error(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "corpus.dvc").write_text("outs: nothing\n")
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    line = repo.gm_fails("add", "m.safetensors", "--data", "corpus.dvc")
    assert "corpus.dvc is not a DVC file with an 'outs' entry and its md5" in line


LFS_CONTENT = b"big data set bytes\n" * 10


def lfs_pointer(content: bytes) -> bytes:
    oid = hashlib.sha256(content).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n".encode()


def test_a_git_lfs_pointer_in_the_working_tree(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "train.bin").write_bytes(lfs_pointer(LFS_CONTENT))  # not smudged (no git-lfs here)
    repo.git("add", "train.bin")
    repo.commit("data")
    record = add_with(repo, "train.bin")["train"]
    assert record == {"source": "git-lfs", "path": "train.bin", "oid": "sha256:" + hashlib.sha256(LFS_CONTENT).hexdigest(),
                      "size": len(LFS_CONTENT), "commit": repo.git("rev-parse", "HEAD").stdout.strip()}


def test_a_smudged_git_lfs_file_is_recorded_by_its_staged_pointer(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "train.bin").write_bytes(lfs_pointer(LFS_CONTENT))
    repo.git("add", "train.bin")
    repo.commit("data")
    (repo.path / "train.bin").write_bytes(LFS_CONTENT)  # what git-lfs's smudge filter leaves
    record = add_with(repo, "train.bin")["train"]
    assert record["source"] == "git-lfs"
    assert record["oid"] == "sha256:" + hashlib.sha256(LFS_CONTENT).hexdigest()


def test_a_git_tracked_file_is_recorded_by_blob_and_commit(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "labels.csv").write_text("a,1\nb,2\n")
    repo.git("add", "labels.csv")
    repo.commit("labels")
    record = add_with(repo, "labels.csv")["labels"]
    assert record == {"source": "git", "path": "labels.csv",
                      "blob": repo.git("rev-parse", "HEAD:labels.csv").stdout.strip(),
                      "commit": repo.git("rev-parse", "HEAD").stdout.strip()}
    (repo.path / "labels.csv").write_text("a,1\nb,2\nc,3\n")  # changed since HEAD: the blob would lie
    make_safetensors(repo.path / "m.safetensors", TENSORS, seed=2)
    repo.gm("add", "m.safetensors", "--data", "labels.csv")
    assert data_of(repo)["labels"]["source"] == "file"


def test_data_outside_the_repository_is_recorded_by_absolute_path(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    outside = tmp_path / "shared-data"
    outside.mkdir()
    (outside / "f").write_bytes(b"x")
    record = add_with(repo, f"shared={outside}")["shared"]
    assert record["path"] == str(outside) and record["source"] == "folder" and record["files"] == 1


def test_the_same_name_twice_is_refused(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "a").mkdir()
    (repo.path / "b").mkdir()
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    line = repo.gm_fails("add", "m.safetensors", "--data", "x=a", "--data", "x=b")
    assert "a data set named 'x' is given twice" in line
