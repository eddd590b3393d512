"""Push: send a remote the packs, index files and manifests some versions need and it lacks.

Order (docs/remotes.md): every pack first, then the index files, then the manifests, so a
reader of the remote never finds a manifest whose chunks it cannot locate. A rerun after an
interruption lists the remote again and sends only what is still missing.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gitmodel.errors import GitModelError, MissingObjectError
from gitmodel.manifest import Manifest
from gitmodel.progress import Progress, ProgressFactory
from gitmodel.remote.base import Remote, Target
from gitmodel.remote.state import (
    MARKER, MARKER_TEXT, RemoteState, index_key, load_state, manifest_key, pack_key, record_dir, save_record,
)
from gitmodel.store import container
from gitmodel.store.atomic import temp_name
from gitmodel.store.index import Location
from gitmodel.store.objects import ChunkId, ChunkStore, ManifestId
from gitmodel.store.pack import PackFile

# A local pack is sent whole when the remote needs at least this fraction of its bytes;
# below it, the needed chunks are copied into a new pack that is sent instead. Sending a
# whole pack costs the bytes the remote does not need; repacking costs a local copy of the
# needed bytes (a disk write, no network) and one more object on the remote. At one half,
# a push never sends more than twice what is needed (docs/remotes.md).
WHOLE_PACK_FRACTION = 0.5


@dataclass
class PushResult:
    manifests: int = 0  # manifests sent
    packs: int = 0  # packs sent (whole, or made for this push)
    packs_repacked: int = 0  # of those, made from part of local packs
    indexes: int = 0
    bytes_sent: int = 0
    already: int = 0  # manifests the remote had


class _Counter:
    def __init__(self, progress: Progress | None) -> None:
        self.total = 0
        self._lock = threading.Lock()
        self._progress = progress

    def __call__(self, n: int) -> None:
        with self._lock:
            self.total += n
        if self._progress:
            self._progress(n)


def chunk_closure(store: ChunkStore, cids: Iterable[ChunkId]) -> set[ChunkId]:
    """The chunks and, transitively, the delta bases they are decoded against."""
    from gitmodel.codecs import base_of

    todo = list(dict.fromkeys(cids))
    seen = set(todo)
    while todo:
        cid = todo.pop()
        loc = store.locate(cid)
        if loc is None or not loc.flags & container.FLAG_BASE:
            continue
        _, payload = store.read_entry(loc)
        base = base_of(loc.codec, payload)
        if base is not None and base not in seen:
            seen.add(ChunkId(base))
            todo.append(ChunkId(base))
    return seen


def push(
    store: ChunkStore,
    remote: Remote,
    remote_name: str,
    common_dir: Path,
    targets: list[Target],
    jobs: int = 4,
    progress: ProgressFactory | None = None,
) -> PushResult:
    result = PushResult()
    remote.prepare()
    state = load_state(remote, record_dir(common_dir, remote_name))
    manifests: dict[str, Manifest] = {}
    for t in targets:
        try:
            manifests[t.manifest] = Manifest.decode(store.get_manifest(ManifestId(t.manifest)), t.manifest)
        except MissingObjectError:
            raise GitModelError(
                f"{', '.join(t.labels) or t.manifest}: its data is not in the local store, so it cannot be pushed; "
                f"run 'git model fetch' or 'git model add' where its weights are"
            ) from None
    wanted: list[ChunkId] = [cid for m in manifests.values() for cid, _ in m.chunks]
    for cid in wanted:
        if not store.has_chunk(cid):
            owner = next(t for t in targets if any(c == cid for c, _ in manifests[t.manifest].chunks))
            raise GitModelError(
                f"{', '.join(owner.labels)}: chunk {cid} is not in the local store; "
                f"run 'git model fsck', or 'git model add' the model again"
            )
    needed = [c for c in chunk_closure(store, wanted) if bytes.fromhex(c) not in state.chunks]
    counter = _Counter(None)
    staging = store.tmp_dir / temp_name("push.")
    try:
        uploads = _plan_packs(store, state, needed, staging, result)
        send = [m for m in manifests if m not in state.manifests]
        if progress is not None:
            total = sum(p.stat().st_size for n, p, _ in uploads if state.packs.get(n) != p.stat().st_size)
            total += sum(i.stat().st_size for n, _, i in uploads if n not in state.indexes)
            total += sum(store.manifest_path(ManifestId(m)).stat().st_size for m in send)
            if total:
                counter = _Counter(progress(f"pushing to {remote_name}", total + (0 if state.marker else len(MARKER_TEXT))))
        if not state.marker:
            remote.put(MARKER, MARKER_TEXT, counter)
        remote.transfers = max(1, jobs)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            # packs, then index files, then manifests: each step only after the last is whole
            packs = [(n, p) for n, p, _ in uploads if state.packs.get(n) != p.stat().st_size]
            list(pool.map(lambda nf: remote.put(pack_key(nf[0]), nf[1], counter), packs))
            result.packs = len(packs)
            list(pool.map(lambda nf: remote.put(index_key(nf[0]), nf[1], counter),
                          [(n, i) for n, _, i in uploads if n not in state.indexes]))
            result.indexes = sum(1 for n, _, _ in uploads if n not in state.indexes)
            list(pool.map(lambda m: remote.put(manifest_key(m), store.manifest_path(ManifestId(m)), counter), send))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.manifests = len(send)
    result.already = len(manifests) - len(send)
    result.bytes_sent = counter.total
    save_record(common_dir, remote_name, remote.url, state.manifests | set(manifests))
    return result


def _plan_packs(
    store: ChunkStore, state: RemoteState, needed: list[ChunkId], staging: Path, result: PushResult
) -> list[tuple[str, Path, Path]]:
    """(pack name, pack file, index file) to upload: whole local packs, and new packs made of
    the needed chunks of the others (and of v1 loose chunks)."""
    by_pack: dict[str, list[tuple[bytes, Location]]] = {}
    loose: list[ChunkId] = []
    for cid in needed:
        loc = store.locate(cid)
        if loc is None:
            loose.append(cid)
        else:
            by_pack.setdefault(loc.pack, []).append((bytes.fromhex(cid), loc))
    out: list[tuple[str, Path, Path]] = []
    partial: list[tuple[bytes, Location]] = []
    for name, entries in sorted(by_pack.items()):
        path = store.pack_path(name)
        size = path.stat().st_size
        if sum(loc.length for _, loc in entries) >= WHOLE_PACK_FRACTION * size:
            out.append((name, path, store.index_dir / f"{name}.idx"))
        else:
            partial += entries
    if not partial and not loose:
        return out
    packs_dir, index_dir = staging / "packs", staging / "index"
    for d in (packs_dir, index_dir):
        d.mkdir(parents=True, exist_ok=True)
    # in the order of the local packs, so a rerun after an interruption makes the very same
    # packs (same table, same name) and finds them already sent
    partial.sort(key=lambda cl: (cl[1].pack, cl[1].offset))
    items: list[tuple[bytes, int, int, int, bytes]] = []
    held = 0
    for chunk, loc in partial:
        _, payload = store.read_entry(loc)
        items.append((chunk, loc.codec, loc.flags, loc.raw_len, payload))
        held += len(payload)
        if held >= store.pack_target:  # a pack of the usual size; at most one in memory
            out.append(_write_pack(staging, items))
            result.packs_repacked += 1
            items, held = [], 0
    for cid in loose:
        data = store.get_chunk(cid)
        codec, encoded = container.encode(data, store.zstd_level)
        items.append((bytes.fromhex(cid), codec, 0, len(data), bytes(encoded)))
    if items:
        out.append(_write_pack(staging, items))
        result.packs_repacked += 1
    return out


def _write_pack(staging: Path, items: list[tuple[bytes, int, int, int, bytes]]) -> tuple[str, Path, Path]:
    pack = PackFile(staging)
    try:
        for chunk, codec, flags, raw_len, payload in items:
            pack.add(chunk, codec, flags, raw_len, payload)
        name, _ = pack.finish(staging / "packs", staging / "index")
    except BaseException:
        pack.abort()
        raise
    return name, staging / "packs" / f"{name}.pack", staging / "index" / f"{name}.idx"
