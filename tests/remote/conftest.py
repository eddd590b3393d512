"""Remotes under test: a folder, and an S3 bucket on a real moto server this session starts on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/ (the server helper)

from benchmarks.s3server import MotoServer  # noqa: E402

from conftest import Repo  # noqa: E402

_bucket_numbers = itertools.count()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    log = tmp_path_factory.mktemp("moto") / "server.log"
    try:
        server = MotoServer(log=log).start()
    except RuntimeError:  # importing moto can take over its minute on a loaded machine: once more, warm
        server = MotoServer(log=log).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RemoteUnderTest:
    """One remote of the contract suite: its URL, the environment a clone needs, and raw access."""

    kind: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    root: Path | None = None  # the folder, for a folder remote
    server: MotoServer | None = None
    bucket: str = ""
    prefix: str = ""

    def _s3(self):  # the same client git-model uses, for setting up and damaging objects
        from gitmodel.remote.s3 import S3Remote

        old = dict(os.environ)
        os.environ.update(self.env)
        try:
            remote = S3Remote(self.bucket, self.prefix, self.url)
            remote._client()
        finally:
            os.environ.clear()
            os.environ.update(old)
        return remote

    def keys(self, prefix: str = "") -> dict[str, int]:
        if self.root is not None:
            return {p.relative_to(self.root).as_posix(): p.stat().st_size for p in self.root.rglob("*")
                    if p.is_file() and p.relative_to(self.root).parts[0] != "tmp"
                    and p.relative_to(self.root).as_posix().startswith(prefix)}
        return self._s3().list_keys(prefix)

    def read(self, key: str) -> bytes:
        if self.root is not None:
            return (self.root / key).read_bytes()
        return self._s3().get(key)

    def write(self, key: str, data: bytes) -> None:
        if self.root is not None:
            path = self.root / key
            if path.exists():
                path.chmod(0o644)
            path.write_bytes(data)
        else:
            self._s3().put(key, data)

    def delete(self, key: str) -> None:
        if self.root is not None:
            (self.root / key).unlink()
        else:
            self._s3().delete(key)


@pytest.fixture(params=["folder", "s3"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> RemoteUnderTest:
    if request.param == "folder":
        root = tmp_path / "remote-folder"
        return RemoteUnderTest("folder", root.as_uri(), root=root)
    server: MotoServer = request.getfixturevalue("moto_server")
    bucket = f"models-{os.getpid()}-{next(_bucket_numbers)}"
    server.make_bucket(bucket)
    env = {**server.env(), "GITMODEL_REMOTE_RETRY_SECONDS": "2"}
    return RemoteUnderTest("s3", f"s3://{bucket}/team/weights", env, server=server, bucket=bucket,
                           prefix="team/weights")


@pytest.fixture
def origin(committed_repo: Repo, remote: RemoteUnderTest) -> Repo:
    """A repository with git-model initialised and `remote` as origin in .gitmodel.toml (committed;
    `remote add` itself is tested in test_errors.py)."""
    repo = committed_repo
    repo.env.update(remote.env)
    config = repo.path / ".gitmodel.toml"
    config.write_text(config.read_text() + f'\n[remotes.origin]\nurl = "{remote.url}"\n')
    repo.git("add", ".gitmodel.toml")
    repo.commit("remote")
    return repo


@pytest.fixture
def remote_env(remote: RemoteUnderTest) -> Iterator[None]:
    """In-process reads need the remote's credentials and endpoint in this process's environment."""
    old = dict(os.environ)
    os.environ.update(remote.env)
    yield
    os.environ.clear()
    os.environ.update(old)


def local_chunks(repo: Repo) -> set[str]:
    """The chunk ids `repo`'s own store holds (none before anything was fetched)."""
    from gitmodel.store.objects import ChunkStore

    if not repo.store.exists():
        return set()
    store = ChunkStore(repo.store)
    try:
        return set(store.chunk_ids())
    finally:
        store.close()


def clone(src: Repo, path: Path) -> Repo:
    """`git clone` of `src`: the pointers and .gitmodel.toml, no weights."""
    src.run("git", "clone", "-q", src.path, path, cwd=src.path.parent)
    return Repo(path, dict(src.env))
