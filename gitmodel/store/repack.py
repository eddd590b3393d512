"""Rewriting packs: copy the chunks to keep into new packs, then drop the old ones (gc, fsck, delete)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.store import container
from gitmodel.store.atomic import fsync_dir, unlink_quietly
from gitmodel.store.index import Location
from gitmodel.store.loose import ChunkId
from gitmodel.store.objects import ChunkStore


@dataclass
class RewriteResult:
    copied: int = 0
    copied_bytes: int = 0
    new_packs: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    corrupt: list[tuple[str, str]] = field(default_factory=list)  # (chunk id, what is wrong)


def verified_entry(store: ChunkStore, chunk: bytes, loc: Location) -> tuple[int, int, int, bytes]:
    """(codec, flags, raw length, payload) of a pack entry, after decoding it (a delta against
    its base, which stays where it is) and checking its id."""
    head, payload = store.read_entry(loc)
    where = f"{store.pack_path(loc.pack)}@{loc.offset}"
    store.decode_entry(ChunkId(chunk.hex()), head, payload, loc, where)
    codec, flags, raw_len = container.parse_header(head, where, container.CONTAINER_V2)
    return codec, flags, raw_len, payload


def rewrite_packs(
    store: ChunkStore,
    packs: Iterable[str],
    keep: Callable[[bytes], bool],
    loose: Iterable[ChunkId] = (),
    drop_loose: Iterable[ChunkId] = (),
    dispose: Callable[[Path], None] | None = None,
) -> RewriteResult:
    """Copy out of `packs` (and the `loose` v1 chunks) every chunk `keep` accepts, verified,
    into new packs; then remove the old packs and loose files.

    Order (docs/store-format.md): the new packs and their indexes are durable before any
    old index file goes, and the old index files go before their packs, so a reader always
    finds each kept chunk in one place or the other. A chunk that fails verification is
    not copied and is reported. Callers hold the store alone (`store.exclusive()`).
    """
    targets = set(packs)
    result = RewriteResult()
    by_pack: dict[str, list[tuple[bytes, Location]]] = {p: [] for p in targets}
    for chunk, loc in store.index.entries():
        if loc.pack in by_pack:
            by_pack[loc.pack].append((chunk, loc))
    copied: set[bytes] = set()
    loose_done: list[ChunkId] = []
    with store.pack_writer() as writer:
        for name in sorted(targets):
            for chunk, loc in sorted(by_pack[name], key=lambda cl: cl[1].offset):
                if chunk in copied or not keep(chunk):
                    continue
                try:
                    codec, flags, raw_len, payload = verified_entry(store, chunk, loc)
                except (GitModelError, OSError) as exc:
                    result.corrupt.append((chunk.hex(), str(exc)))
                    continue
                writer.put((chunk, codec, flags, raw_len, payload))
                copied.add(chunk)
                result.copied += 1
                result.copied_bytes += loc.length
        for cid in loose:
            chunk = bytes.fromhex(cid)
            if chunk not in copied and store.index.lookup(chunk) is None:
                try:
                    data = store.loose.get_chunk(cid)
                except (GitModelError, OSError) as exc:
                    result.corrupt.append((cid, str(exc)))
                    continue
                codec, encoded = container.encode(data, store.zstd_level)
                writer.put((chunk, codec, 0, len(data), encoded))
                copied.add(chunk)
                result.copied += 1
                result.copied_bytes += container.HEADER_SIZE + len(encoded)
            loose_done.append(cid)
    result.new_packs = list(writer.packs)
    # a rewrite that copied a whole pack in its order made the same pack again (same table,
    # same name), already renamed over the old file: that one must stay
    old = sorted(targets - set(result.new_packs))
    # the new packs are durable and indexed: now the old indexes may go, then the packs
    for name in old:
        unlink_quietly(store.index_dir / f"{name}.idx")
    fsync_dir(store.index_dir)
    for name in old:
        path = store.pack_path(name)
        try:
            result.removed_bytes += path.stat().st_size
        except OSError:
            pass
        if dispose is not None:
            dispose(path)
        else:
            unlink_quietly(path)
        store.index.forget_pack(name)
    fsync_dir(store.packs_dir)
    for cid in [*loose_done, *drop_loose]:
        path = store.loose_chunk_path(cid)
        try:
            result.removed_bytes += path.stat().st_size
        except OSError:
            continue
        if dispose is not None:
            dispose(path)
        else:
            unlink_quietly(path)
    return result


def drop_chunks(store: ChunkStore, dead: set[bytes]) -> RewriteResult:
    """Delete chunks: packs holding one are rewritten without them, loose files removed."""
    packs = {loc.pack for chunk, loc in store.index.entries() if chunk in dead}
    loose = [c for c in store.loose.chunk_ids() if bytes.fromhex(c) in dead]
    with store.exclusive():
        return rewrite_packs(store, packs, lambda chunk: chunk not in dead, drop_loose=loose)


def quarantine(store: ChunkStore, path: Path, copy: bool = False) -> Path:
    """Move (or copy) a damaged file aside to `<store>/quarantine/`, keeping it for inspection."""
    target_dir = store.root / "quarantine"
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    n = 1
    while target.exists():
        target = target_dir / f"{path.name}.{n}"
        n += 1
    try:
        os.chmod(path, 0o444)
    except OSError:
        pass
    if copy:
        shutil.copyfile(path, target)
    else:
        shutil.move(str(path), str(target))
    return target
