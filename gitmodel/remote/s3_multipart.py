"""S3 multipart uploads that resume across runs: a pack cut off mid-upload sends only its missing parts.

obstore uploads a large object in parts but does not expose the upload's id, so an upload cut
off by a dropped connection or a killed process starts again from its first byte. This module
speaks the four S3 multipart calls itself (create, list parts, upload part, complete; and
list uploads, to find one a previous run began), over `http.client`, signed with AWS
Signature Version 4 (docs/remotes.md, "Resuming an upload"):

- the upload in progress for a key is found on the server (ListMultipartUploads), so no state
  is kept locally and a rerun from another clone resumes it too;
- a part already on the server is kept only when its size and ETag (the MD5 of its bytes, as S3
  computes it for a plain upload) match the local bytes; any other part is sent again;
- the object becomes visible only on CompleteMultipartUpload, whole, as with any S3 upload.

It needs keys it can sign with (environment or `~/.aws` profile); without them (instance roles,
SSO), `S3Remote.put` keeps obstore's upload, which works but does not resume.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit

UNSIGNED = "UNSIGNED-PAYLOAD"
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


class S3HttpError(Exception):
    """The server answered with an error status; `code` is S3's error code (NoSuchUpload...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}" if code else f"HTTP {status}")
        self.status = status
        self.code = code


def sign(method: str, url: str, query: Mapping[str, str], headers: Mapping[str, str],
         payload_hash: str, creds: Credentials, region: str, now: datetime) -> dict[str, str]:
    """The headers of `method url?query` signed with AWS Signature Version 4 for service s3.

    `headers` must hold `host`; the result adds x-amz-date, x-amz-content-sha256, the session
    token if any, and Authorization. Every given header is signed.
    """
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    out = {k.lower(): v.strip() for k, v in headers.items()}
    out["x-amz-date"] = stamp
    out["x-amz-content-sha256"] = payload_hash
    if creds.token:
        out["x-amz-security-token"] = creds.token
    names = sorted(out)
    canonical = "\n".join([
        method,
        quote(urlsplit(url).path or "/", safe="/~"),
        "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query.items())),
        "".join(f"{n}:{out[n]}\n" for n in names),
        ";".join(names),
        payload_hash,
    ])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{creds.secret_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out


def part_ranges(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """(part number, offset, length) of each part of an object of `size` bytes."""
    return [(i + 1, off, min(part_size, size - off)) for i, off in enumerate(range(0, size, part_size))]


class MultipartClient:
    """Path-style requests to one bucket at one endpoint (as obstore makes them)."""

    def __init__(self, endpoint: str, bucket: str, region: str, creds: Credentials,
                 timeout: float = 120.0, retry_seconds: float = 20.0) -> None:
        parts = urlsplit(endpoint)
        self.https = parts.scheme == "https"
        self.host = parts.netloc
        self.base = parts.path.rstrip("/")
        self.bucket = bucket
        self.region = region
        self.creds = creds
        self.timeout = timeout
        self.retry_seconds = retry_seconds

    # -- one request --------------------------------------------------------------------
    def request(self, method: str, key: str | None, query: Mapping[str, str],
                body: bytes = b"", extra: Mapping[str, str] | None = None, signed_body: bool = True) -> tuple[dict[str, str], bytes]:
        """One signed request, retried with backoff on connection errors and 5xx answers for
        at most `retry_seconds`; an S3 error answer raises S3HttpError, a connection that
        cannot be made raises OSError."""
        path = f"{self.base}/{self.bucket}" + (f"/{key}" if key is not None else "")
        target = quote(path, safe="/~")
        qs = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query.items()))
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.1
        while True:
            failure: Exception
            try:
                return self._once(method, path, target + (f"?{qs}" if qs else ""), query, body, extra or {}, signed_body)
            except S3HttpError as exc:
                retry, failure = exc.status >= 500, exc
            except (OSError, http.client.HTTPException) as exc:
                retry, failure = True, exc
            if not retry or time.monotonic() + delay > deadline:
                raise failure
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _once(self, method: str, path: str, target: str, query: Mapping[str, str], body: bytes,
              extra: Mapping[str, str], signed_body: bool) -> tuple[dict[str, str], bytes]:
        payload_hash = hashlib.sha256(body).hexdigest() if signed_body else UNSIGNED
        headers = sign(method, f"http://{self.host}{path}", query, {"host": self.host, **extra},
                       payload_hash, self.creds, self.region, datetime.now(timezone.utc))
        headers["content-length"] = str(len(body))
        conn_type = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = conn_type(self.host, timeout=self.timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            got = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        if resp.status >= 300:
            code, message = _error_of(data)
            raise S3HttpError(resp.status, code, message or resp.reason)
        # CompleteMultipartUpload may answer 200 with an error document after a long wait
        if method == "POST" and data.lstrip().startswith(b"<?xml") and b"<Error>" in data[:512]:
            code, message = _error_of(data)
            raise S3HttpError(500, code, message)
        return got, data

    # -- the multipart calls ------------------------------------------------------------
    def uploads_in_progress(self, key: str) -> list[str]:
        """Ids of the multipart uploads begun for exactly `key` and not completed."""
        _, data = self.request("GET", None, {"uploads": "", "prefix": key})
        root = ET.fromstring(data)
        return [_text(u, "UploadId") for u in root.iter(f"{_NS}Upload") if _text(u, "Key") == key]

    def create(self, key: str) -> str:
        _, data = self.request("POST", key, {"uploads": ""})
        return _text(ET.fromstring(data), "UploadId")

    def parts(self, key: str, upload_id: str) -> dict[int, tuple[int, str]]:
        """Part number → (size, ETag without quotes) of the parts the server holds."""
        out: dict[int, tuple[int, str]] = {}
        marker = "0"
        while True:
            _, data = self.request("GET", key, {"uploadId": upload_id, "part-number-marker": marker})
            root = ET.fromstring(data)
            for p in root.iter(f"{_NS}Part"):
                out[int(_text(p, "PartNumber"))] = (int(_text(p, "Size")), _text(p, "ETag").strip('"'))
            if _text(root, "IsTruncated", "false") != "true":
                return out
            marker = _text(root, "NextPartNumberMarker")

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, md5: bytes) -> str:
        got, _ = self.request("PUT", key, {"partNumber": str(number), "uploadId": upload_id}, data,
                              {"content-md5": base64.b64encode(md5).decode()}, signed_body=False)
        return got.get("etag", "").strip('"')

    def complete(self, key: str, upload_id: str, etags: Mapping[int, str]) -> None:
        body = "<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>\"{etags[n]}\"</ETag></Part>" for n in sorted(etags)
        ) + "</CompleteMultipartUpload>"
        self.request("POST", key, {"uploadId": upload_id}, body.encode())

    def abort(self, key: str, upload_id: str) -> None:
        self.request("DELETE", key, {"uploadId": upload_id})


def _text(node: ET.Element, tag: str, default: str | None = None) -> str:
    found = node.find(f"{_NS}{tag}")
    if found is None:
        found = node.find(tag)
    if found is None or found.text is None:
        if default is not None:
            return default
        raise S3HttpError(502, "MalformedAnswer", f"the server's answer has no {tag}")
    return found.text


def _error_of(data: bytes) -> tuple[str, str]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return "", ""
    code = root.findtext("Code") or root.findtext(f"{_NS}Code") or ""
    message = root.findtext("Message") or root.findtext(f"{_NS}Message") or ""
    return code, message


@dataclass
class Upload:
    """What one resumable upload did: bytes sent now, and bytes found already on the server."""

    sent: int = 0
    kept: int = 0


def put_resumable(client: MultipartClient, key: str, source: Path, part_size: int,
                  counter: Callable[[int], None] | None = None, jobs: int = 4) -> Upload:
    """Upload `source` to `key` in parts, continuing the upload a previous run began for that
    key when there is one: parts already there with the right size and MD5 are not sent again."""
    size = source.stat().st_size
    ranges = part_ranges(size, part_size)
    upload_id, held = _resume_point(client, key)
    result = Upload()
    etags: dict[int, str] = {}

    def one(number: int, offset: int, length: int) -> None:
        with open(source, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        if len(data) != length:
            raise OSError(f"{source} changed while it was being sent")
        md5 = hashlib.md5(data, usedforsecurity=False)
        have = held.get(number)
        if have is not None and have == (length, md5.hexdigest()):
            etags[number] = have[1]
            result.kept += length
            return
        etag = client.upload_part(key, upload_id, number, data, md5.digest())
        etags[number] = etag or md5.hexdigest()
        result.sent += length
        if counter:
            counter(length)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for fut in [pool.submit(one, *r) for r in ranges]:
            fut.result()
    try:
        client.complete(key, upload_id, etags)
    except S3HttpError as exc:
        # another push of the same pack (same bytes: packs are named by content) completed it
        if exc.code != "NoSuchUpload":
            raise
    for other in client.uploads_in_progress(key):
        if other != upload_id:  # leftovers of earlier cut-off runs of the same bytes
            try:
                client.abort(key, other)
            except S3HttpError:
                pass
    return result


def _resume_point(client: MultipartClient, key: str) -> tuple[str, dict[int, tuple[int, str]]]:
    """The upload to continue (the one holding the most parts) and its parts, or a new upload."""
    best: tuple[str, dict[int, tuple[int, str]]] | None = None
    for upload_id in client.uploads_in_progress(key):
        try:
            held = client.parts(key, upload_id)
        except S3HttpError as exc:
            if exc.code == "NoSuchUpload":
                continue
            raise
        if best is None or sum(s for s, _ in held.values()) > sum(s for s, _ in best[1].values()):
            best = (upload_id, held)
    if best is not None:
        return best
    return client.create(key), {}


def credentials_from(env: Mapping[str, str], profile: Mapping[str, str]) -> Credentials | None:
    """Keys to sign with: the AWS_* environment variables, else the profile's keys, else None."""
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN") or None)
    if profile.get("access_key_id") and profile.get("secret_access_key"):
        return Credentials(profile["access_key_id"], profile["secret_access_key"], profile.get("session_token") or None)
    return None


def default_endpoint(region: str) -> str:
    return f"https://s3.{region}.amazonaws.com"


def region_from(env: Mapping[str, str] = os.environ, profile: Mapping[str, str] | None = None) -> str:
    return (profile or {}).get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
