"""Failures a user meets with remotes: each one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Repo, assert_one_line_error, make_safetensors, new_repo

from benchmarks.s3server import MotoServer, free_port
from tests.remote.conftest import clone


@pytest.fixture
def repo_with_model(tmp_path: Path) -> Repo:
    repo = new_repo(tmp_path / "repo", tmp_path / "home")
    make_safetensors(repo.path / "m.safetensors", {"w": (32, 32)}, seed=1)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("model")
    return repo


def test_remote_add_list_remove_edit_only_their_table(repo_with_model: Repo) -> None:
    repo = repo_with_model
    config = repo.path / ".gitmodel.toml"
    config.write_text(config.read_text() + '\n[metadata]\nrequired = []\n')
    repo.gm("remote", "add", "origin", "s3://team-models/weights", "--endpoint-url", "http://127.0.0.1:9000")
    repo.gm("remote", "add", "backup", "file:///mnt/backup")
    assert repo.gm("remote").stdout.split() == ["backup", "origin"]
    verbose = repo.gm("remote", "-v").stdout
    assert "origin\ts3://team-models/weights  (endpoint http://127.0.0.1:9000)" in verbose
    assert "backup\tfile:///mnt/backup" in verbose
    line = repo.gm_fails("remote", "add", "origin", "/elsewhere")
    assert "remote 'origin' already exists" in line and "--force" in line
    repo.gm("remote", "remove", "origin")
    text = config.read_text()
    assert "[metadata]\nrequired = []" in text and "team-models" not in text and "[remotes.backup]" in text
    assert repo.gm("remote").stdout.split() == ["backup"]
    repo.gm("check")  # the metadata rules still parse beside the remotes table
    assert "no remote 'origin'" in repo.gm_fails("remote", "remove", "origin")
    assert "s3://BUCKET" in repo.gm_fails("remote", "add", "x", "s3://A_B")
    assert "not a remote name" in repo.gm_fails("remote", "add", "--", "b@d", "/tmp/x")
    assert "http" in repo.gm_fails("remote", "add", "y", "s3://bucket", "--endpoint-url", "localhost:9000")


def test_push_without_a_remote_says_how_to_add_one(repo_with_model: Repo) -> None:
    line = repo_with_model.gm_fails("push")
    assert "no remote is configured" in line and "git model remote add origin" in line
    repo_with_model.gm("remote", "add", "origin", "../remote")
    # an argument that is neither a remote nor a model
    assert "nope" in repo_with_model.gm_fails("push", "nope")


def test_fetch_from_a_folder_that_does_not_exist(repo_with_model: Repo, tmp_path: Path) -> None:
    repo_with_model.gm("remote", "add", "origin", str(tmp_path / "nowhere"))
    repo_with_model.git("add", ".gitmodel.toml")
    repo_with_model.commit("remote")
    other = clone(repo_with_model, tmp_path / "other")
    line = other.gm_fails("pull")
    assert "nowhere does not exist" in line


def _s3_repo(repo: Repo, url: str, env: dict[str, str], *extra: str) -> None:
    repo.env.update(env)
    repo.env["GITMODEL_REMOTE_RETRY_SECONDS"] = "1"
    repo.gm("remote", "add", "origin", url, *extra)


def test_a_bucket_that_does_not_exist_is_named(repo_with_model: Repo, moto_server: MotoServer, tmp_path: Path) -> None:
    _s3_repo(repo_with_model, "s3://no-such-bucket/x", moto_server.env())
    line = assert_one_line_error(repo_with_model.gm("push", check=False))
    assert "bucket 'no-such-bucket' does not exist" in line
    repo_with_model.git("add", ".gitmodel.toml")
    repo_with_model.commit("remote")
    other = clone(repo_with_model, tmp_path / "other")
    line = assert_one_line_error(other.gm("pull", check=False))
    assert "bucket 'no-such-bucket' does not exist" in line


def test_a_closed_port_is_one_line_after_retries(repo_with_model: Repo, moto_server: MotoServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    _s3_repo(repo_with_model, "s3://bucket/x", moto_server.env(), "--endpoint-url", closed)
    line = assert_one_line_error(repo_with_model.gm("push", check=False))
    assert f"cannot reach the remote s3://bucket/x at {closed}" in line and "run the command again" in line


def test_refused_credentials_are_one_line(repo_with_model: Repo, tmp_path: Path) -> None:
    # a second server that checks signatures: no access key exists there, so every one is refused
    import os

    old = os.environ.get("INITIAL_NO_AUTH_ACTION_COUNT")
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    try:
        server = MotoServer(log=tmp_path / "auth.log").start()
    finally:
        if old is None:
            del os.environ["INITIAL_NO_AUTH_ACTION_COUNT"]
        else:
            os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = old
    try:
        _s3_repo(repo_with_model, "s3://bucket/x", server.env())
        line = assert_one_line_error(repo_with_model.gm("push", check=False))
        assert "refused the credentials" in line and "AWS_ACCESS_KEY_ID" in line
    finally:
        server.stop()


def test_credentials_come_from_an_aws_profile(repo_with_model: Repo, moto_server: MotoServer, tmp_path: Path) -> None:
    moto_server.make_bucket("profile-bucket")
    env = moto_server.env()
    home = Path(repo_with_model.env["HOME"])
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        f"[team]\naws_access_key_id = {env.pop('AWS_ACCESS_KEY_ID')}\naws_secret_access_key = {env.pop('AWS_SECRET_ACCESS_KEY')}\n"
    )
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        repo_with_model.env.pop(key, None)
    _s3_repo(repo_with_model, "s3://profile-bucket/p", {**env, "AWS_PROFILE": "team"})
    assert "pushed 1 manifest(s)" in repo_with_model.gm("push").stdout
    # and no credential was written into the repository
    assert "aws_secret" not in (repo_with_model.path / ".gitmodel.toml").read_text()
