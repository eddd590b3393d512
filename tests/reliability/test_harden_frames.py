"""A zstd payload must end where its frame ends: bytes appended after the frame are damage.

zstd stops reading at the end of its frame, so a pack entry, a loose object or a plane with
bytes after the frame decoded to the right chunk and passed its id check; a disk or a server
that grew an object went unseen. Every zstd decode goes through codecs.basic.zstd_decompress.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Repo, sha256
from gitmodel.codecs import decode as decode_chunk
from gitmodel.codecs import planes
from gitmodel.codecs.basic import zstd_compress
from gitmodel.errors import DamagedObjectError
from gitmodel.store import ChunkStore, container

from tests.reliability import tamper_forge as tf

TEXT = b"".join(b"line %06d of a model file that compresses well\n" % i for i in range(6000))


def _zstd_entries(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """chunk id -> (flags, raw length, payload) of every zstd entry of the store's packs."""
    store = ChunkStore(root)
    try:
        out = {}
        for path in sorted((root / "packs").glob("*.pack")):
            for chunk, offset, length in tf.table_of(path.read_bytes()):
                loc = store.locate(chunk.hex())  # type: ignore[arg-type]
                assert loc is not None
                if loc.codec == container.CODEC_ZSTD:
                    _, payload = store.read_entry(loc)
                    out[chunk.hex()] = (loc.flags, loc.raw_len, bytes(payload))
        return out
    finally:
        store.close()


def test_a_pack_entry_with_bytes_after_its_frame_is_refused(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    (repo.path / "m.bin").write_bytes(TEXT)
    repo.gm("add", "-q", "m.bin")
    repo.commit("v1")
    repo.gm("tag", "m", "1.0.0", "-m", "first")
    (repo.path / "m.bin").write_bytes(b"other bytes " * 1000)
    repo.gm("add", "-q", "m.bin")
    repo.commit("v2")
    kept = sha256(repo.path / "m.bin")
    entries = _zstd_entries(repo.store)
    assert entries, "the text file should be stored as zstd"
    victim, (flags, raw_len, payload) = next(iter(entries.items()))
    tf.forge_store(repo.store, {victim: tf.Forged(container.CODEC_ZSTD, flags, raw_len, payload + b"\0grown")},
                   tmp_path / "work")

    line = repo.gm_fails("checkout", "m@v1.0.0")
    assert "m@v1.0.0" in line and "after the frame" in line, line
    assert sha256(repo.path / "m.bin") == kept  # the working tree's file is kept
    out = repo.gm("fsck", check=False)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    report = out.stdout + out.stderr
    assert "after the frame" in report and "broken: m model/m/v1.0.0" in report, report


def test_a_loose_object_with_bytes_after_its_frame_is_refused() -> None:
    raw = TEXT[:50_000]
    packed = zstd_compress(raw)
    assert container.decode(container.CODEC_ZSTD, packed, len(raw), "obj") == raw
    with pytest.raises(DamagedObjectError, match="after the frame"):
        container.decode(container.CODEC_ZSTD, packed + b"x", len(raw), "obj")


def test_a_zstd_chunk_payload_with_bytes_after_its_frame_is_refused() -> None:
    import xxhash

    raw = TEXT[:50_000]
    cid = xxhash.xxh3_128_hexdigest(raw)
    packed = zstd_compress(raw)
    assert decode_chunk(container.CODEC_ZSTD, packed, len(raw), cid) == raw
    with pytest.raises(DamagedObjectError, match="after the frame"):
        decode_chunk(container.CODEC_ZSTD, packed + b"\0\0\0\0", len(raw), cid)


def test_a_plane_with_bytes_after_its_frame_is_refused() -> None:
    """Planes keep each plane in its own frame: one grown inside its stated size is refused too."""
    import numpy as np
    import xxhash

    values = np.random.default_rng(3).normal(0, 0.02, 20_000).astype(np.float32)
    raw = values.tobytes()
    cid = xxhash.xxh3_128_hexdigest(raw)
    layout = planes.PlaneLayout(4, planes.TRANSFORM_ROTATE)
    payload = planes.encode(raw, layout)
    assert decode_chunk(container.CODEC_PLANES, payload, len(raw), cid) == raw
    head, desc = planes._HEAD, planes._PLANE
    pos = head.size
    descriptors = []
    for _ in range(4):
        descriptors.append(desc.unpack_from(payload, pos))
        pos += desc.size
    assert any(mode == planes.PLANE_ZSTD for mode, _ in descriptors), "the exponent plane should compress"
    # grow the first zstd plane by 3 bytes and state the larger size
    body_at = pos  # no tail: 20,000 values of 4 bytes
    grown = bytearray(payload[:head.size])
    bodies = []
    done = False
    for mode, size in descriptors:
        body = payload[body_at : body_at + size]
        body_at += size
        if mode == planes.PLANE_ZSTD and not done:
            body, done = body + b"abc", True
        grown += desc.pack(mode, len(body))
        bodies.append(body)
    grown += b"".join(bodies)
    with pytest.raises(DamagedObjectError, match="after the frame"):
        decode_chunk(container.CODEC_PLANES, bytes(grown), len(raw), cid)
