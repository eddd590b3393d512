"""The remote interface (list, stat, get, get_ranges, put, delete) and its errors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitmodel.errors import GitModelError

ByteCounter = Callable[[int], None]
"""Called with the number of bytes just sent or received (progress and counts)."""


@dataclass
class Target:
    """One manifest to push or fetch, with the model versions it belongs to (for messages)."""

    manifest: str
    labels: list[str] = field(default_factory=list)


class RemoteError(GitModelError):
    """A remote failed; `retryable` says whether running the command again may succeed
    (a connection that dropped) or not (a bucket that does not exist, refused credentials)."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class RemoteNotFound(RemoteError):
    """An object the caller expected is not on the remote."""


class Remote(ABC):
    """Objects named by '/'-separated keys under one root (a folder, or a bucket and prefix).

    Keys are the store's own relative paths (`packs/<name>.pack`, `index/<name>.idx`,
    `objects/manifests/<2>/<62>`), so a remote is laid out exactly like a store.
    """

    url: str
    transfers: int = 4
    """At most this many transfers at once inside one object (the parts of an S3 upload); push sets it from -j."""

    @abstractmethod
    def list_keys(self, prefix: str) -> dict[str, int]:
        """Key → size of every object whose key starts with `prefix` (a folder, ending in '/')."""

    @abstractmethod
    def stat(self, key: str) -> int | None:
        """The size of `key`, or None when it does not exist."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object; RemoteNotFound when it does not exist."""

    @abstractmethod
    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each (offset, length) range of `key`, in the order given."""

    @abstractmethod
    def put(self, key: str, source: Path | bytes, counter: ByteCounter | None = None) -> None:
        """Store `source` under `key`, all or nothing: a reader sees the old object, none, or
        the whole new one, never part of it."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key` (absent is fine)."""

    def prepare(self) -> None:
        """Make the remote writable where that is ours to do (a folder is created; a bucket is not)."""

    def check(self) -> None:
        """Fail with one clear line when the remote cannot be used at all (missing bucket, bad credentials)."""
        self.list_keys("store.toml")
