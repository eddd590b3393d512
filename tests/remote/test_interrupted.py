"""A push whose S3 server goes away mid-transfer fails with one line; the rerun sends only what is missing."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import assert_one_line_error, make_safetensors, new_repo

from benchmarks.s3server import MotoServer
from tests.remote.conftest import clone
from tests.remote.proxy import CuttingProxy


def test_push_resumes_after_the_server_went_away(moto_server: MotoServer, tmp_path: Path) -> None:
    moto_server.make_bucket("interrupted")
    proxy = CuttingProxy(moto_server.port)
    try:
        repo = new_repo(tmp_path / "repo", tmp_path / "home")
        repo.env.update({**moto_server.env(), "AWS_ENDPOINT_URL": proxy.url, "GITMODEL_REMOTE_RETRY_SECONDS": "1"})
        repo.gm("remote", "add", "origin", "s3://interrupted/w")
        repo.git("add", ".gitmodel.toml")
        for i in range(3):  # three packs of 1 MiB
            make_safetensors(repo.path / f"m{i}.safetensors", {"w": (512, 512)}, seed=i)
            repo.gm("add", "-q", f"m{i}.safetensors")
        repo.commit("models")
        pack_bytes = sum(p.stat().st_size for p in (repo.store / "packs").iterdir())
        proxy.reopen(limit=int(pack_bytes * 0.5))  # the server goes away in the second pack
        line = assert_one_line_error(repo.gm("push", "-j", "1", check=False))
        assert "cannot reach the remote s3://interrupted/w" in line and "resumes" in line
        proxy.reopen()
        resumed = json.loads(repo.gm("push", "--json").stdout)
        assert resumed["manifests_sent"] == 3 and resumed["indexes_sent"] == 3
        assert 1 <= resumed["packs_sent"] <= 2, resumed  # the first pack was whole on the server
        assert resumed["bytes_sent"] <= pack_bytes * 2 / 3 + 64 * 1024
        # what went through the wire: what was missing, plus requests and headers
        assert proxy.upstream <= resumed["bytes_sent"] + 64 * 1024, (proxy.upstream, resumed)
        other = clone(repo, tmp_path / "other")
        other.gm("pull", "-q")
        for i in range(3):
            assert (other.path / f"m{i}.safetensors").read_bytes() == (repo.path / f"m{i}.safetensors").read_bytes()
    finally:
        proxy.close()
