"""After `git clone` and `install-hooks`, `git checkout` of a branch fetches the weights it needs from the remote."""

from __future__ import annotations

from pathlib import Path

from conftest import make_safetensors, new_repo, sha256

from tests.remote.conftest import clone


def test_checkout_fetches_the_new_version_from_the_remote(tmp_path: Path) -> None:
    # the hook's fetch is the same code on every remote: a folder is enough here
    origin = new_repo(tmp_path / "origin", tmp_path / "home")
    origin.gm("remote", "add", "origin", str(tmp_path / "remote"))
    origin.git("add", ".gitmodel.toml")
    make_safetensors(origin.path / "m.safetensors", {"w": (64, 64)}, seed=1)
    origin.gm("add", "-q", "m.safetensors")
    origin.commit("v1")
    origin.git("checkout", "-q", "-b", "tuned")
    make_safetensors(origin.path / "m.safetensors", {"w": (64, 64)}, seed=2)
    origin.gm("add", "-q", "m.safetensors")
    origin.commit("v2")
    tuned = sha256(origin.path / "m.safetensors")
    origin.gm("push", "-q")  # the tuned branch's version
    origin.git("checkout", "-q", "main")
    origin.gm("push", "-q")  # and main's
    other = clone(origin, tmp_path / "other")
    other.gm("pull", "-q")
    other.gm("install-hooks")
    cp = other.git("checkout", "-q", "tuned")
    assert sha256(other.path / "m.safetensors") == tuned, cp.stderr
    assert "restored m.safetensors" in cp.stderr
    # with autoFetch off, the hook says what is missing and leaves the fetch to the user
    other.git("checkout", "-q", "main")
    other.git("config", "model.autoFetch", "false")
    store_before = sorted(p.name for p in (other.store / "packs").iterdir())
    other.git("checkout", "-q", "tuned")
    assert sorted(p.name for p in (other.store / "packs").iterdir()) == store_before
