"""`git model add` of a new version stores XOR deltas against the parent version; checkout, gc, fsck and du keep them right."""

from __future__ import annotations

import json
from pathlib import Path

from bf16_series import Run
from conftest import Repo
from gitmodel.store import ChunkId, ChunkStore
from gitmodel.store.container import FLAG_BASE
from helpers_store import chunk_entries, flip_payload_byte

MODEL = "model.safetensors"


def add_json(repo: Repo, *args: str) -> dict[str, object]:
    out = json.loads(repo.gm("add", "--json", *args).stdout)
    added = out["added"][0]
    assert isinstance(added, dict)
    return added


def delta_chunks(repo: Repo) -> dict[str, str]:
    """Delta chunk id -> its base chunk id, for every delta in the store."""
    store = ChunkStore(repo.store)
    out = {c: store.base_id(loc).hex() for c, loc in chunk_entries(repo.store).items() if loc.flags & FLAG_BASE}
    store.close()
    return out


def two_versions(repo: Repo) -> tuple[Run, bytes, bytes, dict[str, object], dict[str, object]]:
    run = Run()
    v1 = run.save(repo.path / MODEL)
    first = add_json(repo, MODEL)
    repo.commit("v1")
    run.step()
    v2 = run.save(repo.path / MODEL)
    second = add_json(repo, MODEL)
    repo.commit("v2")
    return run, v1, v2, first, second


def test_a_training_step_is_stored_as_deltas_and_checks_out_byte_exact(committed_repo: Repo) -> None:
    repo = committed_repo
    _, v1, v2, first, second = two_versions(repo)
    # the first version: byte planes, about 0.66 of raw for bf16 N(0, 0.02) weights
    assert int(first["bytes_written"]) < 0.72 * len(v1), first  # type: ignore[call-overload]
    # the second: deltas against the first, about 0.11-0.15 of raw (a quarter of values moved)
    assert int(second["bytes_written"]) < 0.25 * len(v2), second  # type: ignore[call-overload]
    assert len(delta_chunks(repo)) >= 6  # one per weight tensor at least

    (repo.path / MODEL).unlink()
    repo.git("checkout", "-q", "HEAD~1")
    repo.gm("checkout", "-q")
    assert (repo.path / MODEL).read_bytes() == v1
    repo.git("checkout", "-q", "main")
    repo.gm("checkout", "-q")
    assert (repo.path / MODEL).read_bytes() == v2

    du = json.loads(repo.gm("du", "--json").stdout)
    (model,) = du["models"]
    older, newer = model["versions"]
    assert older["deltas"] == 0 and older["delta_saved"] == 0 and older["compression_saved"] > 0.25 * len(v1)
    assert newer["deltas"] >= 6 and newer["delta_saved"] > 0.7 * len(v2)
    assert model["delta_saved"] == newer["delta_saved"]
    assert "delta chunk(s)" in repo.gm("du").stdout


def test_parent_names_the_version_to_delta_against(committed_repo: Repo) -> None:
    repo = committed_repo
    run = Run(seed=1)
    run.save(repo.path / MODEL)
    repo.gm("add", "-q", MODEL)
    repo.commit("base")
    run.step()
    other = run.save(repo.path / "tuned.safetensors")
    # a new path has no pointer to replace: without --parent it is stored whole
    added = add_json(repo, "tuned.safetensors", "--parent", "model@HEAD")
    assert int(added["bytes_written"]) < 0.25 * len(other), added  # type: ignore[call-overload]
    (repo.path / "tuned.safetensors").unlink()
    repo.gm("checkout", "-q")
    assert (repo.path / "tuned.safetensors").read_bytes() == other


def test_gc_after_the_parent_is_dropped_keeps_the_bases(committed_repo: Repo) -> None:
    repo = committed_repo
    run = Run(seed=2)
    run.save(repo.path / MODEL)
    repo.gm("add", "-q", MODEL)
    repo.commit("v1")
    repo.git("branch", "parent")
    run.step()
    v2 = run.save(repo.path / MODEL)
    repo.gm("add", "-q", MODEL)
    repo.git("commit", "-q", "--amend", "-m", "v2 only")  # v1 lives on branch 'parent' alone
    bases = set(delta_chunks(repo).values())
    assert bases
    repo.git("branch", "-D", "parent")
    result = json.loads(repo.gm("gc", "--grace", "0", "--json").stdout)
    assert len(result["manifests_deleted"]) == 1  # v1's manifest is dead ...
    assert bases <= set(chunk_entries(repo.store))  # ... but the chunks v2's deltas need stay
    assert json.loads(repo.gm("fsck", "--json").stdout)["ok"]
    (repo.path / MODEL).unlink()
    repo.gm("checkout", "-q")
    assert (repo.path / MODEL).read_bytes() == v2


def test_a_damaged_base_is_an_error_naming_the_model_never_wrong_bytes(committed_repo: Repo) -> None:
    repo = committed_repo
    two_versions(repo)
    deltas = delta_chunks(repo)
    base = sorted(deltas.values())[0]
    flip_payload_byte(repo.store, base)
    (repo.path / MODEL).unlink()

    line = repo.gm_fails("checkout")
    assert "'model'" in line and "delta" in line and base in line, line
    assert not (repo.path / MODEL).exists()
    assert not [p for p in repo.path.iterdir() if p.name.startswith(".gitmodel-tmp")]

    report = json.loads(repo.gm("fsck", "--no-repair", "--json", check=False).stdout)
    assert not report["ok"]
    damaged = {p["object"]: p["detail"] for p in report["problems"] if p["kind"] == "damaged-chunk"}
    assert base in damaged
    assert any(f"base chunk {base}" in detail for detail in damaged.values())
    broken = {(b["model"], b["version"]) for b in report["broken"]}
    assert {m for m, _ in broken} == {"model"} and len(broken) == 2  # v1 holds the base, v2 its deltas


def test_chunk_ids_and_manifests_do_not_depend_on_the_codec(committed_repo: Repo, tmp_path: Path) -> None:
    """The same file added with compression off names the same chunks: codecs change bytes on disk only."""
    repo = committed_repo
    run = Run(seed=3)
    run.save(repo.path / MODEL)
    with_codecs = add_json(repo, MODEL)
    repo.commit("v1")
    pointer = repo.pointer(MODEL)
    repo.git("config", "model.store", str(tmp_path / "other-store"))
    repo.git("config", "model.compression", "0")
    (repo.path / MODEL).touch()
    add_json(repo, MODEL)
    assert repo.pointer(MODEL) == pointer
    assert int(with_codecs["bytes_written"]) < 0.72 * int(with_codecs["size"])  # type: ignore[call-overload]
