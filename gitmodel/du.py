"""du: store usage per model and version, and what deduplication, compression and deltas saved."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from gitmodel.errors import GitModelError, NotAModelError
from gitmodel.gitrepo import GitRepo
from gitmodel.liveness import decode_or_none, scan
from gitmodel.manifest import Manifest
from gitmodel.store.container import FLAG_BASE
from gitmodel.store.loose import ManifestId
from gitmodel.store.objects import ChunkStore


@dataclass
class VersionUsage:
    label: str  # tag model/<name>/vX.Y.Z, else the short id of the first commit holding it
    commit: str | None
    time: int
    files: int
    logical: int  # the files' sizes
    stored: int  # raw bytes of its distinct chunks
    unique: int  # raw bytes of the chunks no other version (of any model) uses
    on_disk: int  # bytes its distinct chunks take in the store (after compression)
    missing: int  # chunks (or manifests) not in the store
    compression_saved: int = 0  # stored - on_disk: what codecs saved on its chunks, deltas included
    delta_saved: int = 0  # the part of compression_saved from chunks stored as deltas
    deltas: int = 0  # how many of its distinct chunks are stored as deltas


@dataclass
class ModelUsage:
    name: str
    versions: list[VersionUsage] = field(default_factory=list)
    logical: int = 0
    stored: int = 0
    on_disk: int = 0
    delta_saved: int = 0  # the part of compression_saved from chunks stored as deltas

    @property
    def dedup_saved(self) -> int:
        return self.logical - self.stored

    @property
    def compression_saved(self) -> int:
        return self.stored - self.on_disk


@dataclass
class StoreUsage:
    root: str
    packs: int
    pack_bytes: int
    index_bytes: int
    loose_bytes: int
    manifest_bytes: int
    other_bytes: int

    @property
    def total(self) -> int:
        return self.pack_bytes + self.index_bytes + self.loose_bytes + self.manifest_bytes + self.other_bytes


@dataclass
class DuResult:
    models: list[ModelUsage]
    store: StoreUsage


def du(store: ChunkStore, git: GitRepo, name: str | None = None) -> DuResult:
    live = scan(git)
    # every version's chunks, so 'unique' can count what no other version shares
    versions: list[tuple[str, VersionUsage, dict[str, int], dict[str, int], set[str]]] = []
    order: dict[int, int] = {}
    users: dict[str, int] = {}
    names: set[str] = set()
    for v in live.versions.values():
        pointer = decode_or_none(v)
        if pointer is None:
            continue
        names.add(pointer.name)
        raw: dict[str, int] = {}
        disk: dict[str, int] = {}
        deltas: set[str] = set()
        missing = 0
        for entry in pointer.files:
            try:
                manifest = Manifest.decode(store.get_manifest(ManifestId(entry.manifest)), entry.manifest)
            except GitModelError:
                missing += 1
                continue
            for cid, length in manifest.chunks:
                if cid in raw:
                    continue
                raw[cid] = length
                found = _stored(store, cid)
                if found is None:
                    missing += 1
                else:
                    disk[cid] = found[0]
                    if found[1]:
                        deltas.add(cid)
        for used in raw:
            users[used] = users.get(used, 0) + 1
        first = v.commits[0] if v.commits else None
        usage = VersionUsage(
            live.label(v, pointer.name), first[1] if first else None, first[0] if first else 0,
            len(pointer.files), pointer.size, sum(raw.values()), 0, sum(disk.values()), missing,
        )
        usage.compression_saved = sum(raw[c] - n for c, n in disk.items())
        usage.delta_saved = sum(raw[c] - disk[c] for c in deltas)
        usage.deltas = len(deltas)
        versions.append((pointer.name, usage, raw, disk, deltas))
        order[id(usage)] = v.first_seen
    if name is not None and name not in names:
        known = ", ".join(sorted(names)) or "none yet"
        raise NotAModelError(f"'{name}' is not a model in this repository's history (models: {known})")
    models: dict[str, ModelUsage] = {}
    model_raw: dict[str, dict[str, int]] = {}
    model_disk: dict[str, dict[str, int]] = {}
    model_deltas: dict[str, set[str]] = {}
    for model_name, usage, raw, disk, deltas in versions:
        usage.unique = sum(n for cid, n in raw.items() if users[cid] == 1)
        if name is not None and model_name != name:
            continue
        m = models.setdefault(model_name, ModelUsage(model_name))
        m.versions.append(usage)
        m.logical += usage.logical
        model_raw.setdefault(model_name, {}).update(raw)
        model_disk.setdefault(model_name, {}).update(disk)
        model_deltas.setdefault(model_name, set()).update(deltas)
    for model_name, m in models.items():
        m.stored = sum(model_raw[model_name].values())
        m.on_disk = sum(model_disk[model_name].values())
        m.delta_saved = sum(model_raw[model_name][c] - model_disk[model_name][c] for c in model_deltas[model_name])
        m.versions.sort(key=lambda u: (order[id(u)], u.label))
    return DuResult([models[n] for n in sorted(models)], store_usage(store))


def _stored(store: ChunkStore, cid: str) -> tuple[int, bool] | None:
    """(bytes the chunk takes in the store, whether it is a delta), or None when it is missing."""
    loc = store.index.lookup(bytes.fromhex(cid))
    if loc is not None:
        return loc.length, bool(loc.flags & FLAG_BASE)
    try:
        return store.loose_chunk_path(cid).stat().st_size, False  # type: ignore[arg-type]
    except OSError:
        return None


def store_usage(store: ChunkStore) -> StoreUsage:
    def total(sub: str) -> tuple[int, int]:
        count = size = 0
        for root, _, files in os.walk(store.root / sub):
            for f in files:
                try:
                    size += os.stat(os.path.join(root, f)).st_size
                    count += 1
                except OSError:
                    pass
        return count, size

    packs, pack_bytes = total("packs")
    _, index_bytes = total("index")
    _, loose_bytes = total("objects/chunks")
    _, manifest_bytes = total("objects/manifests")
    _, all_bytes = total("")
    _, quarantined = total("quarantine")
    other = all_bytes - pack_bytes - index_bytes - loose_bytes - manifest_bytes - quarantined
    return StoreUsage(str(store.root), packs, pack_bytes, index_bytes, loose_bytes, manifest_bytes, max(0, other))
