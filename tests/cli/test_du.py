"""`git model du`: per model and version, logical, unique and on-disk bytes, labelled by tags."""

from __future__ import annotations

import json

from conftest import Repo, make_safetensors
from helpers_store import tensors

KiB = 1 << 10


def test_versions_labels_and_what_each_shares(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    make_safetensors(model, tensors(1, 4, 256 * KiB))
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("v1")
    repo.git("tag", "-a", "model/m/v1.0.0", "-m", "v1")
    make_safetensors(model, tensors(2, 4, 256 * KiB, changed=range(3, 4), base_seed=1))  # one tensor of four changes
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("v2")
    (repo.path / "z.bin").write_bytes(bytes(300 * KiB))  # compresses to almost nothing
    repo.gm("add", "-q", "z.bin")
    head = repo.git("rev-parse", "--short=10", "HEAD").stdout.strip()

    doc = json.loads(repo.gm("du", "--json").stdout)

    m, z = doc["models"]
    assert (m["name"], z["name"]) == ("m", "z")
    assert [v["label"] for v in m["versions"]] == ["model/m/v1.0.0", head]
    size = (repo.path / "m.safetensors").stat().st_size
    v1, v2 = m["versions"]
    assert v1["logical"] == v2["logical"] == size
    assert v1["unique"] == v2["unique"] == 256 * KiB  # its own version of tensor t03
    assert m["logical"] == 2 * size and m["stored"] == size + 256 * KiB + 0  # headers are identical
    assert m["dedup_saved"] == size - 256 * KiB
    assert z["versions"][0]["label"] == "uncommitted" and z["versions"][0]["commit"] is None
    assert z["compression_saved"] > 290 * KiB and z["on_disk"] < 10 * KiB
    assert doc["store"]["pack_bytes"] > 0 and doc["store"]["total"] >= doc["store"]["pack_bytes"]

    only = json.loads(repo.gm("du", "m", "--json").stdout)
    assert [x["name"] for x in only["models"]] == ["m"]
    text = repo.gm("du").stdout.splitlines()
    assert text[0].startswith("m: 2 version(s),") and text[1].split()[0] == "model/m/v1.0.0"
    assert text[-1].startswith(f"store {repo.store}: ")


def test_an_unknown_name_is_one_line(committed_repo: Repo) -> None:
    line = committed_repo.gm_fails("du", "nothing")
    assert "'nothing' is not a model" in line


def test_store_commands_need_an_initialized_repository(plain_repo: Repo) -> None:
    for cmd in (("gc",), ("fsck",), ("du",)):
        line = plain_repo.gm_fails(*cmd)
        assert "git model init" in line
