"""A remote in an S3 bucket (AWS S3, MinIO, Ceph, R2, GCS's S3 interface), through obstore.

obstore (Rust's object_store) was chosen by measurement over boto3 (docs/remotes.md): it
imports in a fraction of the time, does ranged reads and multipart uploads itself, and
retries with backoff. It is imported only when a command talks to an S3 remote.
"""

from __future__ import annotations

import configparser
import http.client as http_client
import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from gitmodel.remote.base import ByteCounter, Remote, RemoteError, RemoteNotFound

# A part of a multipart upload; S3 wants at least 5 MiB per part but the last.
PART_SIZE = 8 << 20
# Connection errors and 5xx answers are retried with exponential backoff by obstore, for at
# most this long in all; then the command stops with one line and a rerun resumes.
RETRY_TIMEOUT = timedelta(seconds=float(os.environ.get("GITMODEL_REMOTE_RETRY_SECONDS", "20")))


class S3Remote(Remote):
    def __init__(self, bucket: str, prefix: str, url: str, endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = url
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self._store: Any = None

    # -- the client ---------------------------------------------------------------------
    def _client(self) -> Any:
        if self._store is None:
            from obstore.store import S3Store

            config: dict[str, Any] = {}
            config.update(_profile_credentials())
            if self.endpoint_url:
                config["endpoint"] = self.endpoint_url
            if "region" not in config and not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
                config["region"] = "us-east-1"
            client_options: dict[str, Any] = {"connect_timeout": "5s", "timeout": "120s"}
            if self.endpoint_url and self.endpoint_url.startswith("http://"):
                client_options["allow_http"] = True
            retry: Any = {
                "max_retries": 10,
                "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2},
                "retry_timeout": RETRY_TIMEOUT,
            }
            try:
                self._store = S3Store(
                    self.bucket, prefix=self.prefix or None, config=cast(Any, config),
                    client_options=cast(Any, client_options), retry_config=retry,
                )
            except Exception as exc:
                raise RemoteError(f"cannot use the remote {self.url}: {_first_line(exc)}") from None
        return self._store

    def _fail(self, exc: Exception, key: str) -> RemoteError:
        """One line for an obstore error: what went wrong, with the bucket and what to do."""
        from obstore import exceptions as oe

        low = str(exc).lower()
        if "nosuchbucket" in low or "bucket does not exist" in low:
            return RemoteError(f"bucket '{self.bucket}' does not exist (remote {self.url}); create it or fix the url")
        if isinstance(exc, (oe.PermissionDeniedError, oe.UnauthenticatedError)) or any(
            w in low for w in ("accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch", "expiredtoken", "invalidtoken",
                               "403 forbidden", "status: 403")
        ):
            return RemoteError(
                f"the remote {self.url} refused the credentials (access denied); check AWS_ACCESS_KEY_ID / "
                f"AWS_PROFILE, or the bucket's policy"
            )
        if isinstance(exc, (FileNotFoundError, oe.NotFoundError)) or "nosuchkey" in low:
            return RemoteNotFound(f"{key} is not on the remote {self.url}")
        if any(w in low for w in ("connect", "connection", "timed out", "timeout", "dns", "error sending request")):
            return self._unreachable()
        return RemoteError(f"remote {self.url}: {key}: {_first_line(exc)}", retryable=True)

    def _unreachable(self) -> RemoteError:
        where = self.endpoint_url or "S3"
        return RemoteError(
            f"cannot reach the remote {self.url} at {where} (retried, gave up); check the network or the "
            f"endpoint, then run the command again: it resumes", retryable=True,
        )

    # -- the interface ------------------------------------------------------------------
    def list_keys(self, prefix: str) -> dict[str, int]:
        import obstore

        store = self._client()
        out: dict[str, int] = {}
        try:
            for batch in obstore.list(store, prefix=prefix or None, chunk_size=1000):
                for meta in batch:
                    out[str(meta["path"])] = int(meta["size"])
        except Exception as exc:
            raise self._fail(exc, prefix) from None
        # object_store lists by "directory"; a prefix that is not one is filtered here
        return {k: v for k, v in out.items() if k.startswith(prefix)}

    def stat(self, key: str) -> int | None:
        import obstore

        try:
            return int(obstore.head(self._client(), key)["size"])
        except Exception as exc:
            err = self._fail(exc, key)
            if isinstance(err, RemoteNotFound):
                return None
            raise err from None

    def get(self, key: str) -> bytes:
        import obstore

        try:
            return bytes(obstore.get(self._client(), key).bytes())
        except Exception as exc:
            raise self._fail(exc, key) from None

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        import obstore

        if not ranges:
            return []
        try:
            got = obstore.get_ranges(
                self._client(), key, starts=[o for o, _ in ranges], ends=[o + n for o, n in ranges]
            )
        except Exception as exc:
            raise self._fail(exc, key) from None
        return [bytes(b) for b in got]

    def put(self, key: str, source: Path | bytes, counter: ByteCounter | None = None) -> None:
        import obstore

        size = len(source) if isinstance(source, bytes) else source.stat().st_size
        if not isinstance(source, bytes) and size > PART_SIZE:
            multipart = self._multipart()
            if multipart is not None:  # resumable across runs (docs/remotes.md)
                self._put_resumable(multipart, key, source, counter)
                return
        try:
            if isinstance(source, bytes):
                obstore.put(self._client(), key, source, use_multipart=False)
            else:
                # a multipart upload is completed (made visible) only when every part is in,
                # so the object appears whole or not at all
                obstore.put(self._client(), key, source, use_multipart=size > PART_SIZE,
                            chunk_size=PART_SIZE, max_concurrency=self.transfers)
        except Exception as exc:
            raise self._fail(exc, key) from None
        if counter:
            counter(size)

    def _multipart(self) -> Any:
        """A client for resumable multipart uploads, or None without keys to sign with."""
        from gitmodel.remote import s3_multipart as mp

        profile = _profile_credentials()
        creds = mp.credentials_from(os.environ, profile)
        if creds is None:
            return None
        region = mp.region_from(os.environ, profile)
        endpoint = self.endpoint_url or profile.get("endpoint") or mp.default_endpoint(region)
        return mp.MultipartClient(endpoint, self.bucket, region, creds,
                                  retry_seconds=RETRY_TIMEOUT.total_seconds())

    def _put_resumable(self, client: Any, key: str, source: Path, counter: ByteCounter | None) -> None:
        from gitmodel.remote import s3_multipart as mp

        full = f"{self.prefix}/{key}" if self.prefix else key
        try:
            mp.put_resumable(client, full, source, PART_SIZE, counter, jobs=self.transfers)
        except mp.S3HttpError as exc:  # its text carries S3's error code (NoSuchBucket, AccessDenied...)
            raise self._fail(exc, key) from None
        except (OSError, http_client.HTTPException) as exc:
            if isinstance(exc, OSError) and exc.filename is not None:
                raise  # the local file, not the network
            raise self._unreachable() from None

    def delete(self, key: str) -> None:
        import obstore

        try:
            obstore.delete(self._client(), key)
        except Exception as exc:
            err = self._fail(exc, key)
            if not isinstance(err, RemoteNotFound):
                raise err from None

    def check(self) -> None:
        self.list_keys("store.toml")


def _profile_credentials() -> dict[str, str]:
    """Keys from ~/.aws/credentials and ~/.aws/config for AWS_PROFILE, when the environment has none.

    obstore reads the AWS_* environment variables and instance roles itself; profiles are
    read here (the files' documented INI layout), so every standard source works.
    """
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return {}
    profile = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"
    out: dict[str, str] = {}
    home = Path.home() / ".aws"
    creds = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / "credentials")
    conf = Path(os.environ.get("AWS_CONFIG_FILE") or home / "config")
    for path, section in ((conf, "default" if profile == "default" else f"profile {profile}"), (creds, profile)):
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error):
            continue
        if not parser.has_section(section):
            continue
        sec = parser[section]
        for ini, key in (("aws_access_key_id", "access_key_id"), ("aws_secret_access_key", "secret_access_key"),
                         ("aws_session_token", "session_token"), ("region", "region"),
                         ("endpoint_url", "endpoint")):
            if sec.get(ini):
                out[key] = sec[ini]
    return out


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
