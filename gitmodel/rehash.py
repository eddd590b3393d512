"""The BLAKE3 digest of a file as the store would rebuild it, without writing it anywhere.

A chunk is stored under its XXH3-128 id, and every read checks the chunk against that id. Two
different chunks with one id (an xxh3 collision, or a store or remote forged to look like one)
pass that check; only the whole file's BLAKE3 digest, a cryptographic hash, tells them apart.
`checkout` compares it as it writes; `fetch` (before it stores a version's manifest) and
`fsck --files` compare it here (docs/store-format.md, "What is verified where").
"""

from __future__ import annotations

import blake3

from gitmodel.manifest import Manifest
from gitmodel.rebuild import rebuilt_windows
from gitmodel.store.objects import ChunkStore


def rebuilt_digest(store: ChunkStore, manifest: Manifest) -> str:
    """`blake3:<hex>` of the bytes the store holds for `manifest`'s chunks, in order (each chunk
    verified against its id on the way, as checkout does: the same reader, gitmodel.rebuild)."""
    hasher = blake3.blake3()
    windows = rebuilt_windows(store, manifest)
    try:
        for window in windows:
            hasher.update(window.view)
            window.release()
    finally:
        windows.close()
    return "blake3:" + hasher.hexdigest()


def file_mismatch(store: ChunkStore, manifest: Manifest) -> str | None:
    """Why the store's chunks do not rebuild `manifest`'s file, or None when they do."""
    got = rebuilt_digest(store, manifest)
    if got == manifest.digest:
        return None
    return (f"the chunks rebuild a file whose BLAKE3 digest is {got}, not the version's {manifest.digest}: "
            f"a chunk holds other bytes under its id (a forged object or an xxh3 collision)")
