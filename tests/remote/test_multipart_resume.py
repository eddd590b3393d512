"""A large pack cut off mid-upload to S3 resumes on the next push: the parts already on the server
are not sent again (docs/remotes.md, "Resuming an upload")."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from conftest import Repo, assert_one_line_error, make_safetensors, new_repo

from benchmarks.s3server import MotoServer
from gitmodel.remote import s3_multipart as mp
from gitmodel.remote.s3 import PART_SIZE
from tests.remote.conftest import clone
from tests.remote.proxy import CuttingProxy

MiB = 1 << 20


# -- the signature, against botocore's (the AWS SDK's own signer) -----------------------------
@pytest.mark.parametrize("method,path,query,token", [
    ("PUT", "/bkt/w/packs/ab.pack", {"partNumber": "3", "uploadId": "x/y+z=="}, None),
    ("GET", "/bkt", {"uploads": "", "prefix": "w/packs/ab.pack"}, None),
    ("POST", "/bkt/w/packs/ab.pack", {"uploads": ""}, "session-token/with+chars"),
    ("GET", "/bkt/a key with spaces~", {"part-number-marker": "0", "uploadId": "u"}, None),
])
def test_the_signature_is_the_one_the_aws_sdk_computes(method: str, path: str, query: dict[str, str], token: str | None) -> None:
    from urllib.parse import quote

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials as BotoCredentials

    body = b"<CompleteMultipartUpload/>" if method == "POST" else b""
    payload = mp.UNSIGNED if method == "PUT" else hashlib.sha256(body).hexdigest()
    qs = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query.items()))
    # botocore leaves the payload unsigned only over https when told to; the host is the same
    scheme = "https" if payload == mp.UNSIGNED else "http"
    request = AWSRequest(method=method, url=f"{scheme}://127.0.0.1:9000{quote(path, safe='/~')}?{qs}", data=body or b"x")
    request.context["client_config"] = Config(s3={"payload_signing_enabled": payload != mp.UNSIGNED})
    if payload != mp.UNSIGNED:
        request.data = body
    S3SigV4Auth(BotoCredentials("AKIDEXAMPLE", "secret/key+EXAMPLE", token), "s3", "eu-west-3").add_auth(request)
    theirs = request.headers["Authorization"]
    # botocore signs at the current time: sign ours at the same moment
    when = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    ours = mp.sign(method, f"http://127.0.0.1:9000{path}", query, {"host": "127.0.0.1:9000"},
                   payload, mp.Credentials("AKIDEXAMPLE", "secret/key+EXAMPLE", token), "eu-west-3", when)
    assert "SignedHeaders=" + ours["authorization"].split("SignedHeaders=")[1].split(",")[0] in theirs
    assert ours["authorization"].split("Signature=")[1] == theirs.split("Signature=")[1], (ours, theirs)


def test_a_wrong_secret_changes_the_signature() -> None:
    when = datetime(2026, 12, 2, tzinfo=timezone.utc)
    a = mp.sign("GET", "http://h/b", {}, {"host": "h"}, mp.UNSIGNED, mp.Credentials("k", "s1"), "us-east-1", when)
    b = mp.sign("GET", "http://h/b", {}, {"host": "h"}, mp.UNSIGNED, mp.Credentials("k", "s2"), "us-east-1", when)
    assert a["authorization"] != b["authorization"]


def test_parts_cover_the_object_exactly() -> None:
    for size in (1, PART_SIZE - 1, PART_SIZE, PART_SIZE + 1, 5 * PART_SIZE + 17):
        ranges = mp.part_ranges(size, PART_SIZE)
        assert [n for n, _, _ in ranges] == list(range(1, len(ranges) + 1))
        assert sum(n for _, _, n in ranges) == size
        assert all(off == i * PART_SIZE for i, (_, off, _) in enumerate(ranges))


# -- against the S3 server ------------------------------------------------------------------
def _client(server: MotoServer, bucket: str) -> mp.MultipartClient:
    env = server.env()
    return mp.MultipartClient(env["AWS_ENDPOINT_URL"], bucket, "us-east-1",
                              mp.Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]))


def _big_model_repo(server: MotoServer, tmp_path: Path, bucket: str, proxy: CuttingProxy) -> tuple[Repo, Path]:
    server.make_bucket(bucket)
    repo = new_repo(tmp_path / "repo", tmp_path / "home")
    repo.env.update({**server.env(), "AWS_ENDPOINT_URL": proxy.url, "GITMODEL_REMOTE_RETRY_SECONDS": "1"})
    repo.gm("remote", "add", "origin", f"s3://{bucket}/w")
    repo.git("add", ".gitmodel.toml")
    # 28 MiB of bytes that do not compress: one pack of four parts
    noise = np.random.default_rng(7).integers(0, 256, 28 * MiB, dtype=np.uint8)
    make_safetensors(repo.path / "big.safetensors", {"w": noise})
    repo.gm("add", "-q", "big.safetensors")
    repo.commit("big")
    (pack,) = (repo.store / "packs").glob("*.pack")
    assert pack.stat().st_size > 3 * PART_SIZE
    return repo, pack


def test_a_cut_off_pack_upload_resumes_from_its_parts(moto_server: MotoServer, tmp_path: Path) -> None:
    proxy = CuttingProxy(moto_server.port)
    try:
        repo, pack = _big_model_repo(moto_server, tmp_path, "resume-parts", proxy)
        size = pack.stat().st_size
        # with -j 1 the parts go one at a time: the server goes away in the third of four
        proxy.reopen(limit=int(size * 0.6))
        line = assert_one_line_error(repo.gm("push", "-j", "1", check=False))
        assert "cannot reach the remote s3://resume-parts/w" in line and "resumes" in line

        client = _client(moto_server, "resume-parts")
        key = f"w/packs/{pack.name}"
        (upload,) = client.uploads_in_progress(key)
        held = sum(n for n, _ in client.parts(key, upload).values())
        assert held == 2 * PART_SIZE, "the two parts before the cut are on the server"

        proxy.reopen()
        resumed = json.loads(repo.gm("push", "--json").stdout)
        assert resumed["packs_sent"] == 1 and resumed["manifests_sent"] == 1
        # the parts already there were not sent again
        assert resumed["bytes_sent"] <= size - held + 256 * 1024, (resumed, size, held)
        assert proxy.upstream <= size - held + 512 * 1024, (proxy.upstream, size, held)
        assert client.uploads_in_progress(key) == [], "the completed upload leaves nothing in progress"

        other = clone(repo, tmp_path / "other")
        other.gm("pull", "-q")
        assert (other.path / "big.safetensors").read_bytes() == (repo.path / "big.safetensors").read_bytes()
    finally:
        proxy.close()


def test_a_part_on_the_server_that_differs_from_the_local_bytes_is_sent_again(moto_server: MotoServer, tmp_path: Path) -> None:
    proxy = CuttingProxy(moto_server.port)
    try:
        repo, pack = _big_model_repo(moto_server, tmp_path, "resume-wrong", proxy)
        client = _client(moto_server, "resume-wrong")
        key = f"w/packs/{pack.name}"
        # an upload left by an earlier run whose first part holds other bytes of the right size
        upload = client.create(key)
        wrong = os.urandom(PART_SIZE)
        client.upload_part(key, upload, 1, wrong, hashlib.md5(wrong).digest())
        right = pack.read_bytes()[PART_SIZE:2 * PART_SIZE]
        client.upload_part(key, upload, 2, right, hashlib.md5(right).digest())

        pushed = json.loads(repo.gm("push", "--json").stdout)
        assert pushed["bytes_sent"] <= pack.stat().st_size - PART_SIZE + 256 * 1024, "part 2 was kept"
        assert pushed["bytes_sent"] >= pack.stat().st_size - PART_SIZE, "part 1 was sent again"
        other = clone(repo, tmp_path / "other")
        other.gm("pull", "-q")
        assert (other.path / "big.safetensors").read_bytes() == (repo.path / "big.safetensors").read_bytes()
        assert other.gm("fsck", check=False).returncode == 0
    finally:
        proxy.close()


def test_multipart_errors_name_the_bucket_and_the_unreachable_server(
        moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitmodel.remote.base import RemoteError
    from gitmodel.remote.s3 import S3Remote

    for k, v in moto_server.env().items():
        monkeypatch.setenv(k, v)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(PART_SIZE + 1))
    missing = S3Remote("no-such-bucket-here", "w", "s3://no-such-bucket-here/w")
    with pytest.raises(RemoteError, match="bucket 'no-such-bucket-here' does not exist"):
        missing.put("packs/x.pack", big)
    closed = S3Remote("bkt", "w", "s3://bkt/w", endpoint_url="http://127.0.0.1:1")  # nothing listens on port 1
    client = closed._multipart()
    client.retry_seconds = 0.5
    with pytest.raises(RemoteError, match="cannot reach the remote s3://bkt/w") as err:
        closed._put_resumable(client, "packs/x.pack", big, None)
    assert err.value.retryable
