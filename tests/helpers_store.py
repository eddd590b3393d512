"""Looking inside a store from tests: its chunks, their entries, and ways to damage or lose them."""

from __future__ import annotations

import json
import os
import shutil
import sys
from contextlib import closing
from pathlib import Path

import numpy as np

from conftest import Repo
from gitmodel.store import ChunkStore
from gitmodel.store.index import Location
from gitmodel.store.loose import ManifestId

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def chunk_entries(root: Path) -> dict[str, Location]:
    """chunk id → one location, for every packed chunk of the store at `root`."""
    with closing(ChunkStore(root)) as store:
        return {chunk.hex(): loc for chunk, loc in store.index.entries()}


def chunk_raw_lengths(root: Path) -> dict[str, int]:
    """chunk id → raw length, for every chunk (packed or loose)."""
    with closing(ChunkStore(root)) as store:
        out = {chunk.hex(): loc.raw_len for chunk, loc in store.index.entries()}
        for cid in store.loose.chunk_ids():
            out[cid] = len(store.loose.get_chunk(cid))
    return out


def stored_bytes(root: Path) -> int:
    """Bytes the chunks take in packs (containers, without pack headers and tables)."""
    return sum(loc.length for loc in chunk_entries(root).values())


def delete_all_chunks(root: Path) -> None:
    for sub in ("packs", "index", "objects/chunks"):
        shutil.rmtree(root / sub, ignore_errors=True)


def flip_payload_byte(root: Path, cid: str | None = None, back: int = 100) -> str:
    """Flip one byte in a packed chunk's payload (the largest chunk unless `cid`); return its id."""
    entries = chunk_entries(root)
    if cid is None:
        cid = max(entries, key=lambda c: entries[c].length)
    loc = entries[cid]
    path = root / "packs" / f"{loc.pack}.pack"
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        at = loc.offset + loc.length - min(back, loc.length - 17)
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))
    return cid


def drop_chunk(root: Path, cid: str) -> None:
    """Lose one chunk, as a damaged disk would: the packs holding it are rewritten without it."""
    with closing(ChunkStore(root)) as store:
        store.delete_chunks([cid])  # type: ignore[list-item]


def tensors(seed: int, count: int, nbytes: int, changed: range | None = None, base_seed: int = 0) -> dict[str, np.ndarray]:
    """`count` random uint8 tensors; with `changed`, only those indexes differ from the `base_seed` set."""
    out = {}
    for i in range(count):
        s = seed if changed is None or i in changed else base_seed
        rng = np.random.default_rng([s, i])
        out[f"t{i:02d}"] = np.frombuffer(rng.bytes(nbytes), dtype=np.uint8)
    return out


def objects_of(repo: Repo, pointer_text: str) -> tuple[set[str], set[str]]:
    """(manifest ids, chunk ids) a pointer needs."""
    mids, cids = set(), set()
    with closing(ChunkStore(repo.store)) as store:
        for entry in tomllib.loads(pointer_text)["files"]:
            mids.add(entry["manifest"])
            if store.has_manifest(ManifestId(entry["manifest"])):
                manifest = json.loads(store.get_manifest(ManifestId(entry["manifest"])))
                cids |= {cid for cid, _ in manifest["chunks"]}
    return mids, cids


def in_store(repo: Repo, pointer_text: str) -> bool:
    """Every manifest and chunk the pointer names is in the store and reads back whole."""
    mids, cids = objects_of(repo, pointer_text)
    with closing(ChunkStore(repo.store)) as store:
        for mid in mids:
            if not store.has_manifest(ManifestId(mid)):
                return False
        for cid in cids:
            if not store.has_chunk(cid):  # type: ignore[arg-type]
                return False
            store.get_chunk(cid)  # type: ignore[arg-type]
    return bool(cids)
