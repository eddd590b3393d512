"""fsck: re-verify every object, manifest and pointer; move damaged objects aside; name what is broken."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from gitmodel.errors import GitModelError
from gitmodel.gitrepo import GitRepo
from gitmodel.liveness import scan
from gitmodel.manifest import Manifest
from gitmodel.store import pack as packfmt
from gitmodel.store.atomic import write_file_atomic
from gitmodel.store.loose import ChunkId, ManifestId
from gitmodel.store.objects import ChunkStore
from gitmodel.rehash import file_mismatch
from gitmodel.store.repack import quarantine, rewrite_packs, verified_entry


@dataclass(frozen=True)
class Problem:
    kind: str  # damaged-chunk | damaged-manifest | damaged-pack | damaged-index | missing-manifest | missing-chunk | bad-pointer
    object: str
    detail: str


@dataclass(frozen=True)
class BrokenVersion:
    model: str
    version: str
    path: str
    reason: str


@dataclass
class FsckResult:
    packs: int = 0
    chunks: int = 0
    manifests: int = 0
    pointers: int = 0
    bytes_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    broken: list[BrokenVersion] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def fsck(store: ChunkStore, git: GitRepo, repair: bool = True, wait: float = 60.0, files: bool = False) -> FsckResult:
    """Check the whole store and every pointer the repository knows.

    With `repair`, damaged objects are moved to `<store>/quarantine/` (a pack with a damaged
    chunk is first rewritten without it), so a later fetch or add can store them again.
    With `files`, every live version's file is also rebuilt in memory and its BLAKE3 digest
    compared with the pointer's: the one check that catches a chunk holding other bytes under
    its id (an xxh3 collision), at the cost of reading each version whole.
    """
    result = FsckResult()
    if not store.root.exists():
        _check_pointers(store, git, result)
        return result
    with store.exclusive(wait):
        store.index.reload()
        _check_indexes(store, result, repair)
        _check_packs(store, result, repair)
        _check_loose(store, result, repair)
        _check_manifests(store, result, repair)
        _check_pointers(store, git, result, files)
    return result


def _check_indexes(store: ChunkStore, result: FsckResult, repair: bool) -> None:
    """An index file that cannot be read is rebuilt from the table its pack carries."""
    store.index.packs()  # load
    for name, why in sorted(store.index.damaged.items()):
        result.problems.append(Problem("damaged-index", name, why))
        if not repair:
            continue
        path = store.index_dir / f"{name}.idx"
        try:
            fd = os.open(store.pack_path(name), os.O_RDONLY)
        except FileNotFoundError:
            _aside(store, path, result)  # an index without its pack: nothing to rebuild from
            continue
        try:
            table = packfmt.read_trailer(fd, os.fstat(fd).st_size, str(store.pack_path(name)))
        except GitModelError:
            table = b""
        finally:
            os.close(fd)
        if table and packfmt.pack_name(table) == name:
            _aside(store, path, result)
            write_file_atomic(path, packfmt.INDEX_HEADER + table, store.tmp_dir, mode=0o444)
        else:
            _aside(store, path, result)  # the pack is damaged too: its chunks are lost here
    if store.index.damaged and repair:
        store.index.reload()
        store.index.packs()


def _check_packs(store: ChunkStore, result: FsckResult, repair: bool) -> None:
    by_pack: dict[str, list[bytes]] = {}
    for chunk, loc in store.index.entries():
        by_pack.setdefault(loc.pack, []).append(chunk)
    damaged_packs: dict[str, set[bytes]] = {}
    for name in sorted(store.index.packs()):
        result.packs += 1
        path = store.pack_path(name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            result.problems.append(Problem("damaged-pack", name, f"{path} is missing; its index names it"))
            damaged_packs[name] = set(by_pack.get(name, []))
            continue
        try:
            table = packfmt.read_trailer(fd, os.fstat(fd).st_size, str(path))
            idx = (store.index_dir / f"{name}.idx").read_bytes()[len(packfmt.INDEX_HEADER):]
            if table != idx:  # the index file matches its name, so the pack's copy is the damaged one
                result.problems.append(Problem("damaged-pack", name, "the pack's own table differs from its index"))
                damaged_packs.setdefault(name, set())
        except GitModelError as exc:
            result.problems.append(Problem("damaged-pack", name, str(exc)))
            damaged_packs.setdefault(name, set())  # its chunks may be fine: they are copied out
        finally:
            os.close(fd)
    for chunk, loc in store.index.entries():
        result.chunks += 1
        result.bytes_checked += loc.length
        if loc.pack in damaged_packs and not store.pack_path(loc.pack).exists():
            continue
        try:
            verified_entry(store, chunk, loc)
        except (GitModelError, OSError) as exc:
            result.problems.append(Problem("damaged-chunk", chunk.hex(), str(exc)))
            damaged_packs.setdefault(loc.pack, set()).add(chunk)
    if repair and damaged_packs:
        # rewrite the good chunks of each damaged pack; the pack itself goes to quarantine
        bad = {c for chunks in damaged_packs.values() for c in chunks}
        present = {n for n in damaged_packs if store.pack_path(n).exists()}
        for name in sorted(present):  # a copy first: a rewrite may recreate the same pack name
            result.quarantined.append(str(quarantine(store, store.pack_path(name), copy=True)))
        rewrite_packs(store, present, lambda c: c not in bad)
        for name in damaged_packs:
            if name not in present:  # an index naming a lost pack: its chunks are simply missing
                (store.index_dir / f"{name}.idx").unlink(missing_ok=True)
                store.index.forget_pack(name)
        store.index.write_cache(store.tmp_dir)


def _check_loose(store: ChunkStore, result: FsckResult, repair: bool) -> None:
    for cid in list(store.loose.chunk_ids()):
        result.chunks += 1
        path = store.loose_chunk_path(cid)
        try:
            result.bytes_checked += path.stat().st_size
            store.loose.get_chunk(ChunkId(cid))
        except (GitModelError, OSError) as exc:
            result.problems.append(Problem("damaged-chunk", cid, str(exc)))
            if repair:
                _aside(store, path, result)


def _check_manifests(store: ChunkStore, result: FsckResult, repair: bool) -> None:
    for mid in list(store.manifest_ids()):
        result.manifests += 1
        try:
            Manifest.decode(store.get_manifest(mid), mid)
        except (GitModelError, OSError) as exc:
            result.problems.append(Problem("damaged-manifest", mid, str(exc)))
            if repair:
                _aside(store, store.manifest_path(mid), result)


def _aside(store: ChunkStore, path: os.PathLike[str], result: FsckResult) -> None:
    from pathlib import Path

    moved = quarantine(store, Path(path))
    result.quarantined.append(str(moved))


def _check_pointers(store: ChunkStore, git: GitRepo, result: FsckResult, files: bool = False) -> None:
    live = scan(git)
    seen_missing: set[str] = set()
    # chunks found damaged and still in place (--no-repair; a delta whose base is damaged is
    # one): the versions naming them are broken too, with why
    damaged = {p.object: p.detail for p in result.problems if p.kind == "damaged-chunk"}
    rehashed: dict[str, str | None] | None = {} if files else None
    for version in live.versions.values():
        result.pointers += 1
        try:
            pointer = version.decode()
        except GitModelError as exc:
            if version.places:
                where = ", ".join(version.places)
            else:
                where = f"commit {version.commits[0][1][:10]}" if version.commits else version.blob
            result.problems.append(Problem("bad-pointer", version.blob, f"{where}: {exc}"))
            continue
        label = live.label(version, pointer.name)
        for entry in pointer.files:
            reason = _file_problem(store, entry.manifest, entry.digest, entry.size, result, seen_missing, damaged,
                                   rehashed)
            if reason is not None:
                result.broken.append(BrokenVersion(pointer.name, label, entry.path, reason))


def _file_problem(
    store: ChunkStore, mid: str, digest: str, size: int, result: FsckResult, seen: set[str],
    damaged: dict[str, str] | None = None, rehashed: dict[str, str | None] | None = None,
) -> str | None:
    """Why a pointer's file cannot be rebuilt from the store, or None when it can (with
    `rehashed`, a cache by manifest: also rebuilt and its BLAKE3 digest compared)."""
    try:
        manifest = Manifest.decode(store.get_manifest(ManifestId(mid)), mid)
    except GitModelError:
        if mid not in seen:
            seen.add(mid)
            result.problems.append(Problem("missing-manifest", mid, "named by a pointer, not in the store (or damaged)"))
        return f"manifest {mid} is missing"
    if manifest.digest != digest or manifest.size != size:
        return f"manifest {mid} does not describe the pointer's file"
    missing = store.missing(cid for cid, _ in manifest.chunks)
    for cid in missing:
        if cid not in seen:
            seen.add(cid)
            result.problems.append(Problem("missing-chunk", cid, f"named by manifest {mid}, not in the store"))
    if missing:
        return f"{len(missing)} chunk(s) missing, e.g. {missing[0]}"
    bad = [cid for cid, _ in manifest.chunks if damaged and cid in damaged]
    if bad and damaged:
        return f"{len(bad)} chunk(s) damaged, e.g. {damaged[bad[0]]}"
    if rehashed is not None:
        if mid not in rehashed:
            try:
                rehashed[mid] = file_mismatch(store, manifest)
            except GitModelError as exc:
                rehashed[mid] = str(exc)
            if rehashed[mid] is not None:
                result.problems.append(Problem("wrong-file-digest", mid, str(rehashed[mid])))
        return rehashed[mid]
    return None
