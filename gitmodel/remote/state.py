"""What a remote holds (its packs, index files and manifests), and the local record status reads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.remote.base import Remote
from gitmodel.store.atomic import unlink_quietly, write_file_atomic
from gitmodel.store.index import Location
from gitmodel.store.pack import decode_index

PACKS = "packs/"
INDEX = "index/"
MANIFESTS = "objects/manifests/"
MARKER = "store.toml"
MARKER_TEXT = b"version = 2\n"
HEX = frozenset("0123456789abcdef")


def pack_key(name: str) -> str:
    return f"{PACKS}{name}.pack"


def index_key(name: str) -> str:
    return f"{INDEX}{name}.idx"


def manifest_key(mid: str) -> str:
    digest = mid.split(":", 1)[1]
    return f"{MANIFESTS}{digest[:2]}/{digest[2:]}"


def _names(listing: dict[str, int], prefix: str, suffix: str) -> dict[str, int]:
    out = {}
    for key, size in listing.items():
        name = key[len(prefix):]
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            if len(name) == 64 and set(name) <= HEX:
                out[name] = size
    return out


@dataclass
class RemoteState:
    packs: dict[str, int] = field(default_factory=dict)  # pack name -> size
    indexes: set[str] = field(default_factory=set)  # packs whose index file is on the remote
    manifests: set[str] = field(default_factory=set)  # "blake3:<hex>"
    chunks: dict[bytes, Location] = field(default_factory=dict)  # chunk -> where (indexed packs only)
    bytes_received: int = 0
    marker: bool = False


def record_dir(common_dir: Path, remote_name: str) -> Path:
    return common_dir / "model-remotes" / remote_name


def load_state(remote: Remote, cache: Path, with_chunks: bool = True) -> RemoteState:
    """List the remote; read its index files (each once: they are immutable and named by
    content, so a verified copy in `cache` stays right forever)."""
    remote.check()
    state = RemoteState()
    state.marker = remote.stat(MARKER) is not None
    state.packs = _names(remote.list_keys(PACKS), PACKS, ".pack")
    state.indexes = set(_names(remote.list_keys(INDEX), INDEX, ".idx"))
    for key in remote.list_keys(MANIFESTS):
        rest = key[len(MANIFESTS):].replace("/", "")
        if len(rest) == 64 and set(rest) <= HEX:
            state.manifests.add("blake3:" + rest)
    if not with_chunks:
        return state
    cache_dir = cache / "index"
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name in sorted(state.indexes):
        if name not in state.packs:
            continue  # an index whose pack is gone names nothing we can read
        path = cache_dir / f"{name}.idx"
        where = f"{remote.url}/{index_key(name)}"
        data: bytes | None = None
        try:
            data = path.read_bytes()
            entries = decode_index(data, name, where)
        except (OSError, GitModelError):
            data = remote.get(index_key(name))
            state.bytes_received += len(data)
            try:
                entries = decode_index(data, name, where)
            except GitModelError:
                continue  # a damaged remote index: its chunks count as absent, so push sends them again
            write_file_atomic(path, data, cache_dir)
        for e in entries:
            state.chunks.setdefault(e.chunk, Location(name, e.offset, e.length, e.raw_len, e.codec, e.flags))
    # forget cached indexes of packs the remote no longer has (a gc there)
    for cached in os.listdir(cache_dir):
        if cached.endswith(".idx") and cached[:-4] not in state.indexes:
            unlink_quietly(cache_dir / cached)
    return state


def save_record(common_dir: Path, remote_name: str, url: str, manifests: set[str]) -> None:
    """Remember which manifests the remote held at the last push or fetch (status reads it)."""
    folder = record_dir(common_dir, remote_name)
    folder.mkdir(parents=True, exist_ok=True)
    body = f"# url {url}\n" + "".join(m + "\n" for m in sorted(manifests))
    write_file_atomic(folder / "manifests", body.encode())


def read_record(common_dir: Path, remote_name: str, url: str) -> set[str]:
    """The manifests the remote held when last seen; empty when never seen (or seen at another url)."""
    try:
        lines = (record_dir(common_dir, remote_name) / "manifests").read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    if not lines or lines[0] != f"# url {url}":
        return set()
    return {line for line in lines[1:] if line.startswith("blake3:")}
