"""Fetch: read from a remote just the chunks some versions need, verify each, store them in new local packs.

Chunks are read with ranged reads of the remote's packs, neighbouring ranges coalesced; each
chunk is decoded and checked against its id before it is handed to the store's pack writer,
so a bad chunk is never stored. Manifests are stored last, only for versions whose every
chunk is now local: the store's own order (chunks, then manifest) holds after a fetch too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.manifest import Manifest
from gitmodel.progress import Progress, ProgressFactory
from gitmodel.rehash import file_mismatch
from gitmodel.remote.base import Remote, RemoteNotFound, Target
from gitmodel.remote.state import RemoteState, load_state, manifest_key, pack_key, record_dir, save_record
from gitmodel.store import container
from gitmodel.store.index import Location
from gitmodel.store.loose import manifest_id_of
from gitmodel.store.objects import ChunkId, ChunkStore, ManifestId

# Ranges closer than this are read as one (the bytes between are cheaper than a request);
# one read holds at most MAX_READ bytes, so memory stays bounded whatever the model size.
COALESCE_GAP = 1 << 20
MAX_READ = 32 << 20
MAX_ROUNDS = 64  # delta chains are short (docs/codecs.md); this only stops a cycle


@dataclass
class Damaged:
    chunk: str
    where: str
    detail: str


@dataclass
class FetchResult:
    manifests: int = 0  # manifests stored
    chunks: int = 0  # chunks stored
    bytes_received: int = 0
    requests: int = 0  # ranged reads of packs
    up_to_date: int = 0  # targets that were already local
    damaged: list[Damaged] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # one line each: a version the remote cannot give
    failed_labels: list[str] = field(default_factory=list)


class _Tally:
    def __init__(self, progress: Progress | None) -> None:
        self.bytes = 0
        self.requests = 0
        self._lock = threading.Lock()
        self.progress = progress

    def add(self, n: int) -> None:
        with self._lock:
            self.bytes += n
            self.requests += 1
        if self.progress:
            self.progress(n)


def coalesce(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(offset, length) spans sorted and merged when they are close: the reads to make."""
    out: list[tuple[int, int]] = []
    for offset, length in sorted(spans):
        if out:
            start, size = out[-1]
            end = start + size
            if offset - end <= COALESCE_GAP and max(end, offset + length) - start <= MAX_READ:
                out[-1] = (start, max(end, offset + length) - start)
                continue
        out.append((offset, length))
    return out


def fetch(
    store: ChunkStore,
    remote: Remote,
    remote_name: str,
    common_dir: Path,
    targets: list[Target],
    jobs: int = 4,
    progress: ProgressFactory | None = None,
) -> FetchResult:
    result = FetchResult()
    tally = _Tally(None)
    manifests: dict[str, Manifest] = {}
    raw_manifests: dict[str, bytes] = {}
    labels: dict[str, list[str]] = {t.manifest: t.labels for t in targets}
    todo = [t for t in targets if not _complete(store, t.manifest)]
    result.up_to_date = len(targets) - len(todo)
    if not todo:
        return result
    state = load_state(remote, record_dir(common_dir, remote_name))
    tally.bytes += state.bytes_received
    for t in todo:
        try:
            if store.has_manifest(ManifestId(t.manifest)):
                raw = store.get_manifest(ManifestId(t.manifest))
            else:
                raw = remote_manifest(remote, t.manifest, tally)
                raw_manifests[t.manifest] = raw
            manifests[t.manifest] = Manifest.decode(raw, t.manifest)
        except RemoteNotFound:
            result.missing.append(
                f"{_who(t.labels)}: not on the remote {remote.url}; run 'git model push' in the clone that has it"
            )
        except GitModelError as exc:
            result.damaged.append(Damaged(t.manifest, f"{remote.url}/{manifest_key(t.manifest)}", str(exc)))
            result.failed_labels += t.labels
    owners: dict[str, list[str]] = {}
    for mid, m in manifests.items():
        for cid, _ in m.chunks:
            owners.setdefault(cid, []).extend(labels[mid])
    want = {cid for cid in owners if not store.has_chunk(ChunkId(cid))}
    if progress is not None and want:
        total = sum(loc.length for c in want if (loc := state.chunks.get(bytes.fromhex(c))) is not None)
        tally.progress = progress(f"fetching from {remote_name}", total)
    bad_chunks = _fetch_chunks(store, remote, state, want, owners, jobs, tally, result)
    suspects: set[str] = set()
    trusted: set[str] = set()
    for mid, m in manifests.items():
        if any(cid in bad_chunks or not store.has_chunk(cid) for cid, _ in m.chunks):
            continue
        # each chunk matched its id; the file's BLAKE3 tells a chunk with other bytes under
        # the same id (an xxh3 collision, a forged remote) apart, before the version is stored
        problem = file_mismatch(store, m) if any(cid in want for cid, _ in m.chunks) else None
        if problem is not None:
            result.damaged.append(Damaged(mid, f"{remote.url}/{manifest_key(mid)}", problem))
            result.failed_labels += labels.get(mid, [])
            suspects.update(cid for cid, _ in m.chunks if cid in want)
            continue
        trusted.update(cid for cid, _ in m.chunks)
        if mid in raw_manifests:
            store.put_manifest(raw_manifests[mid])
            result.manifests += 1
    if suspects - trusted:  # not kept: a later fetch, after the remote is repaired, reads them again
        store.delete_chunks(ChunkId(c) for c in suspects - trusted)
    store.sync()
    result.bytes_received = tally.bytes
    result.requests = tally.requests
    save_record(common_dir, remote_name, remote.url, state.manifests)
    return result


def _complete(store: ChunkStore, mid: str) -> bool:
    if not store.has_manifest(ManifestId(mid)):
        return False
    try:
        m = Manifest.decode(store.get_manifest(ManifestId(mid)), mid)
    except GitModelError:
        return False
    return all(store.has_chunk(cid) for cid, _ in m.chunks)


def remote_manifest(remote: Remote, mid: str, tally: _Tally | None = None) -> bytes:
    """A manifest's raw bytes from the remote (the store's container), verified against its id."""
    key = manifest_key(mid)
    blob = remote.get(key)
    if tally is not None:
        tally.add(len(blob))
    where = f"{remote.url}/{key}"
    codec, _, raw_len = container.parse_header(blob[: container.HEADER_SIZE], where, container.CONTAINER_V1)
    raw = container.decode(codec, blob[container.HEADER_SIZE:], raw_len, where)
    got = manifest_id_of(raw)
    if got != mid:
        from gitmodel.errors import DamagedObjectError

        raise DamagedObjectError(where, mid, got)
    return raw


def _who(labels: list[str]) -> str:
    shown = sorted(set(labels))
    return ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def _fetch_chunks(
    store: ChunkStore,
    remote: Remote,
    state: RemoteState,
    want: set[str],
    owners: dict[str, list[str]],
    jobs: int,
    tally: _Tally,
    result: FetchResult,
) -> set[str]:
    """Read, verify and store `want` and the delta bases they need; return the chunks that failed."""
    from gitmodel import codecs

    bad: set[str] = set()
    deferred: dict[str, tuple[Location, bytes]] = {}  # deltas waiting for their base
    lock = threading.Lock()
    for _ in range(MAX_ROUNDS):
        by_pack: dict[str, list[tuple[str, Location]]] = {}
        for cid in sorted(want):
            loc = state.chunks.get(bytes.fromhex(cid))
            if loc is None:
                bad.add(cid)
                result.missing.append(
                    f"{_who(owners.get(cid, []))}: chunk {cid} is not on the remote {remote.url}; "
                    f"push again from the clone that has it"
                )
                continue
            by_pack.setdefault(loc.pack, []).append((cid, loc))
        with store.pack_writer() as writer:

            def accept(cid: str, loc: Location, blob: bytes) -> None:
                where = f"{remote.url}/{pack_key(loc.pack)}@{loc.offset}"
                try:
                    payload = _verify(cid, loc, blob, where, store, codecs.decode)
                except _NeedsBase:
                    with lock:
                        deferred[cid] = (loc, blob)
                    return
                except GitModelError as exc:
                    with lock:
                        bad.add(cid)
                        result.damaged.append(Damaged(cid, where, str(exc)))
                        result.failed_labels += owners.get(cid, [])
                    return
                with lock:
                    writer.put((bytes.fromhex(cid), loc.codec, loc.flags, loc.raw_len, payload))
                    result.chunks += 1

            def read(job: tuple[str, tuple[int, int], list[tuple[str, Location]]]) -> None:
                pack, (start, length), members = job
                (blob,) = remote.get_ranges(pack_key(pack), [(start, length)])
                tally.add(len(blob))
                for cid, loc in members:
                    accept(cid, loc, blob[loc.offset - start: loc.offset - start + loc.length])

            reads: list[tuple[str, tuple[int, int], list[tuple[str, Location]]]] = []
            for pack, members in by_pack.items():
                for span in coalesce([(loc.offset, loc.length) for _, loc in members]):
                    inside = [(c, l) for c, l in members if span[0] <= l.offset < span[0] + span[1]]
                    reads.append((pack, span, inside))
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                list(pool.map(read, reads))
        # this round's chunks are durable and indexed: deltas whose base is now here go in
        ready = {c for c, (loc, blob) in deferred.items() if _base_local(store, loc, blob)}
        if ready:
            _store_ready(store, deferred, ready, remote, codecs.decode, result, bad, owners)
        want = set()
        for cid, (loc, blob) in deferred.items():
            base = codecs.base_of(loc.codec, blob[container.HEADER_SIZE:])
            if base is not None and base not in bad and base not in deferred and not store.has_chunk(ChunkId(base)):
                want.add(base)
                owners.setdefault(base, []).extend(owners.get(cid, []))
        if not want and not ready:
            break
    for cid, (loc, blob) in sorted(deferred.items()):  # a base that could not be had: say so, or exit 0
        result.failed_labels += owners.get(cid, [])
        base = codecs.base_of(loc.codec, blob[container.HEADER_SIZE:])
        reported = base in bad  # that base's own failure was reported (in a loop: by its first member)
        bad.add(cid)
        if reported:
            continue
        result.damaged.append(Damaged(
            cid, f"{remote.url}/{pack_key(loc.pack)}@{loc.offset}",
            f"a delta whose base chunk {base} never arrived (the chain of bases loops, or a base is damaged)",
        ))
    return bad


def _base_local(store: ChunkStore, loc: Location, blob: bytes) -> bool:
    from gitmodel.codecs import base_of

    base = base_of(loc.codec, blob[container.HEADER_SIZE:])
    return base is None or store.has_chunk(ChunkId(base))


def _store_ready(
    store: ChunkStore,
    deferred: dict[str, tuple[Location, bytes]],
    ready: set[str],
    remote: Remote,
    decode: Callable[..., object],
    result: FetchResult,
    bad: set[str],
    owners: dict[str, list[str]],
) -> None:
    with store.pack_writer() as writer:
        for cid in sorted(ready):
            loc, blob = deferred.pop(cid)
            where = f"{remote.url}/{pack_key(loc.pack)}@{loc.offset}"
            try:
                payload = _verify(cid, loc, blob, where, store, decode)
            except GitModelError as exc:
                bad.add(cid)
                result.damaged.append(Damaged(cid, where, str(exc)))
                result.failed_labels += owners.get(cid, [])
                continue
            writer.put((bytes.fromhex(cid), loc.codec, loc.flags, loc.raw_len, payload))
            result.chunks += 1


class _NeedsBase(Exception):
    def __init__(self, base: str) -> None:
        self.base = base


def _verify(
    cid: str, loc: Location, blob: bytes, where: str, store: ChunkStore, decode: Callable[..., object]
) -> bytes:
    """The payload of a remote pack entry after checking its header against the index entry
    and its decoded bytes against the chunk id; _NeedsBase when its delta base is not local."""
    from gitmodel.codecs import base_of

    codec, payload = verify_entry(loc, blob, where)
    base = base_of(codec, payload) if loc.flags & container.FLAG_BASE else None
    if base is not None and not store.has_chunk(ChunkId(base)):
        raise _NeedsBase(base)
    decode(codec, payload, loc.raw_len, cid, lambda b: store.get_chunk(ChunkId(b)), where)
    return payload


def verify_entry(loc: Location, blob: bytes, where: str) -> tuple[int, bytes]:
    """The codec and payload of a remote pack entry whose length and header match its index entry."""
    from gitmodel.errors import DamagedObjectError

    if len(blob) != loc.length:
        raise DamagedObjectError(where, f"{loc.length} bytes", f"{len(blob)} bytes (truncated pack)")
    magic, version, codec, flags, raw_len = container.HEADER.unpack_from(blob)
    if magic != container.MAGIC or version != container.CONTAINER_V2:
        raise DamagedObjectError(where, "a pack entry header", f"magic {magic!r}, version {version}")
    if (codec, flags, raw_len) != (loc.codec, loc.flags, loc.raw_len):
        raise DamagedObjectError(
            where, f"codec {loc.codec}, flags {loc.flags}, {loc.raw_len} bytes", f"codec {codec}, flags {flags}, {raw_len} bytes"
        )
    return codec, blob[container.HEADER_SIZE:]
