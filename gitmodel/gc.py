"""Garbage collection: delete what no pointer, index, worktree or note needs; repack mostly-dead packs."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.gitrepo import GitRepo
from gitmodel.liveness import scan
from gitmodel.manifest import Manifest
from gitmodel.store import container
from gitmodel.store.atomic import unlink_quietly
from gitmodel.store.index import Location
from gitmodel.store.loose import ChunkId, ManifestId
from gitmodel.store.objects import ChunkStore
from gitmodel.store.repack import RewriteResult, rewrite_packs

DEFAULT_GRACE = 3600.0
# Repack a pack when less than this fraction of its bytes is live: restic's prune repacks
# beyond 5% unused by default; a lower bar copies less (a fine-tune history leaves packs
# mostly live) and still reclaims a pack that is mostly dead.
DEFAULT_REPACK_BELOW = 0.5
# Packs under 1/8 of the pack target are merged when there are at least this many of them.
SMALL_PACK_FRACTION = 8
MIN_SMALL_PACKS = 4


@dataclass
class GcResult:
    dry_run: bool
    live_manifests: int = 0
    manifests_deleted: list[str] = field(default_factory=list)
    packs_deleted: list[str] = field(default_factory=list)
    packs_repacked: list[str] = field(default_factory=list)
    packs_written: list[str] = field(default_factory=list)
    loose_deleted: int = 0
    loose_packed: int = 0
    temps_deleted: int = 0
    chunks_deleted: int = 0
    bytes_freed: int = 0
    kept_young: int = 0
    corrupt: list[tuple[str, str]] = field(default_factory=list)


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '30m', '12h', '7d' or '2w'."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if m is None:
        raise GitModelError(f"{text!r} is not a duration: use a number with s, m, h, d or w (e.g. 1h)")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return float(m.group(1)) * unit


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def gc(
    store: ChunkStore,
    git: GitRepo,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
    repack_below: float = DEFAULT_REPACK_BELOW,
    wait: float = 60.0,
) -> GcResult:
    """Delete unreachable objects older than `grace` seconds; repack packs mostly dead.

    Runs under the store's exclusive lock (an `add` holds it shared while it writes), so
    nothing an `add` in progress wrote can go; the grace period protects what other
    clones sharing the store (or the Python API between its calls) wrote recently.
    """
    if not store.root.exists():
        return GcResult(dry_run)
    if dry_run:
        return _gc(store, git, grace, True, repack_below)
    with store.exclusive(wait):
        return _gc(store, git, grace, False, repack_below)


def _gc(store: ChunkStore, git: GitRepo, grace: float, dry_run: bool, repack_below: float) -> GcResult:
    result = GcResult(dry_run)
    now = time.time()
    store.index.reload()
    live_mids = scan(git).live_manifests()
    all_mids = set(store.manifest_ids())
    keep_mids: set[ManifestId] = set()
    for mid in all_mids:
        if mid in live_mids:
            keep_mids.add(mid)
        elif _age(store.manifest_path(mid), now) < grace:
            keep_mids.add(mid)
            result.kept_young += 1
        else:
            result.manifests_deleted.append(mid)
    result.live_manifests = len(keep_mids)
    live: set[bytes] = set()
    for mid in sorted(keep_mids):
        try:
            manifest = Manifest.decode(store.get_manifest(mid), mid)
        except GitModelError as exc:
            # a damaged manifest: keep it (fsck reports it) and everything it may name
            result.corrupt.append((mid, str(exc)))
            continue
        live.update(bytes.fromhex(cid) for cid, _ in manifest.chunks)
    _follow_bases(store, live)

    # which copy of each live chunk stays: one in a young pack, else the first in name order
    young_packs = {p for p in store.index.packs() if _age(store.pack_path(p), now) < grace}
    keeper: dict[bytes, str] = {}
    entries: dict[str, list[tuple[bytes, Location]]] = {}
    for chunk, loc in store.index.entries():
        entries.setdefault(loc.pack, []).append((chunk, loc))
    for name in sorted(entries, key=lambda p: (p not in young_packs, p)):
        for chunk, _ in entries[name]:
            if chunk in live and chunk not in keeper:
                keeper[chunk] = name
    delete_packs: list[str] = []
    repack: list[str] = []
    for name in sorted(entries):
        if name in young_packs:
            result.kept_young += 1
            continue
        size = _size(store.pack_path(name))
        live_bytes = sum(loc.length for chunk, loc in entries[name] if keeper.get(chunk) == name)
        if live_bytes == 0:
            delete_packs.append(name)
            result.chunks_deleted += sum(1 for chunk, _ in entries[name] if chunk not in live)
        elif live_bytes < repack_below * size:
            repack.append(name)
            result.chunks_deleted += sum(1 for chunk, _ in entries[name] if chunk not in live)
    # many small live packs (one per small file added) are merged: fewer files to list, to
    # load the index from, and to push
    small = [n for n in sorted(entries) if n not in young_packs and n not in delete_packs and n not in repack
             and _size(store.pack_path(n)) < store.pack_target // SMALL_PACK_FRACTION]
    if len(small) >= MIN_SMALL_PACKS:
        repack += small
    loose_pack: list[ChunkId] = []
    loose_drop: list[ChunkId] = []
    for cid in store.loose.chunk_ids():
        if _age(store.loose_chunk_path(cid), now) < grace:
            result.kept_young += 1
        elif bytes.fromhex(cid) in live:
            loose_pack.append(cid)
        else:
            loose_drop.append(cid)
    result.chunks_deleted += len(loose_drop)
    orphans = _orphan_packs(store, store.index.packs(), now, grace)
    temps = [p for p in _listdir(store.tmp_dir) if _age(p, now) >= grace]

    result.packs_deleted = delete_packs + [p.stem for p in orphans]
    result.packs_repacked = repack
    result.loose_deleted = len(loose_drop)
    result.loose_packed = len(loose_pack)
    result.temps_deleted = len(temps)
    if dry_run:
        result.bytes_freed = (
            sum(_size(store.manifest_path(ManifestId(m))) for m in result.manifests_deleted)
            + sum(_size(store.pack_path(p)) + _size(store.index_dir / f"{p}.idx") for p in delete_packs)
            + sum(_size(p) for p in orphans)
            + sum(_size(store.pack_path(p)) - sum(l.length for c, l in entries[p] if keeper.get(c) == p) for p in repack)
            + sum(_size(store.loose_chunk_path(c)) for c in loose_drop)
            + sum(_size(p) for p in temps)
        )
        return result

    before = _store_bytes(store)
    # manifests first: a chunk is never gone while a manifest naming it is still there
    for dead in result.manifests_deleted:
        unlink_quietly(store.manifest_path(ManifestId(dead)))
    rewritten = _rewrite(store, repack, delete_packs, keeper, loose_pack, loose_drop)
    result.packs_written = rewritten.new_packs
    result.corrupt += rewritten.corrupt
    for path in [*orphans, *temps]:
        unlink_quietly(path)
    if store.index.uncached() or rewritten.new_packs or delete_packs or repack or orphans:
        store.index.write_cache(store.tmp_dir)  # the next load reads one file, not one per pack
    result.bytes_freed = max(0, before - _store_bytes(store))
    return result


def _rewrite(
    store: ChunkStore,
    repack: list[str],
    delete: list[str],
    keeper: dict[bytes, str],
    loose_pack: list[ChunkId],
    loose_drop: list[ChunkId],
) -> RewriteResult:
    if not (repack or delete or loose_pack or loose_drop):
        return RewriteResult()
    targets = set(repack) | set(delete)
    return rewrite_packs(
        store,
        targets,
        lambda chunk: keeper.get(chunk) in targets,
        loose=loose_pack,
        drop_loose=loose_drop,
    )


def _follow_bases(store: ChunkStore, live: set[bytes]) -> None:
    """Add the base chunks of live delta chunks (flag bit 0: the payload starts with the base id)."""
    todo = list(live)
    while todo:
        chunk = todo.pop()
        loc = store.index.lookup(chunk)
        if loc is None or not loc.flags & container.FLAG_BASE:
            continue
        try:
            fd = store._pack_fd(loc.pack)
            base = os.pread(fd, 16, loc.offset + container.HEADER_SIZE)
        except OSError:
            continue
        if len(base) == 16 and base not in live:
            live.add(base)
            todo.append(base)


def _orphan_packs(store: ChunkStore, indexed: set[str], now: float, grace: float) -> list[Path]:
    """Pack files no index names (a writer died between the pack and its index), past the grace."""
    out = []
    for path in _listdir(store.packs_dir):
        if path.suffix == ".pack" and path.stem not in indexed and _age(path, now) >= grace:
            out.append(path)
    return out


def _listdir(directory: Path) -> list[Path]:
    try:
        return sorted(directory / n for n in os.listdir(directory))
    except FileNotFoundError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _store_bytes(store: ChunkStore) -> int:
    total = 0
    for root, _, files in os.walk(store.root):
        if Path(root).name == "quarantine":
            continue
        for f in files:
            total += _size(Path(root) / f)
    return total

