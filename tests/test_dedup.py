"""Deduplication, measured in bytes: a new version costs what changed, not the whole file.

Store growth is the sum of the raw (uncompressed) lengths of the chunk objects an ingest
creates, read from each new object's header, so compression cannot hide a dedup miss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gitmodel.ingest import IngestResult, ingest_file
from gitmodel.store import ChunkStore

import helpers_formats as hf
from helpers_store import chunk_raw_lengths  # tests/ is on sys.path, as for `from conftest import ...`

KiB, MiB = 1 << 10, 1 << 20
N_LAYERS = 20


def _chunk_files(store: ChunkStore) -> dict[str, int]:
    """chunk id → raw length, from the index entry of every chunk in the store."""
    return chunk_raw_lengths(store.root)


def _ingest_measured(store: ChunkStore, path: Path) -> tuple[IngestResult, dict[str, int]]:
    """Ingest and return the chunks it created (id → raw length)."""
    before = _chunk_files(store)
    result = ingest_file(store, path)
    after = _chunk_files(store)
    new = {cid: n for cid, n in after.items() if cid not in before}
    # the result's own count agrees with what appeared on disk
    assert result.chunks_written == len(new)
    return result, new


def _base_model(seed: int = 0) -> dict[str, np.ndarray]:
    g = hf.rng(seed)
    tensors = {"embed.weight": hf.f32(g, 1100, 1024)}  # 4.3 MiB: two pieces
    for i in range(N_LAYERS):
        tensors[f"layers.{i:02d}.weight"] = hf.f32(g, 128, 512)  # 256 KiB
        tensors[f"layers.{i:02d}.bias"] = hf.f32(g, 512)  # 2 KiB: a small segment
    return tensors


def test_fine_tune_series_costs_only_the_changed_tensors(tmp_path: Path, capsys: Any) -> None:
    store = ChunkStore(tmp_path / "store")
    g = hf.rng(100)
    tensors = _base_model()
    path = tmp_path / "v0" / "model.safetensors"
    path.parent.mkdir()
    hf.save_safetensors(path, tensors)
    first, new = _ingest_measured(store, path)
    assert sum(new.values()) == path.stat().st_size  # the first version is stored whole

    # which layers each version fine-tunes; version 3 also retrains the embedding
    changes = {
        1: ["layers.03", "layers.04"],
        2: ["layers.10", "layers.17"],
        3: ["embed", "layers.04"],
        4: ["layers.00", "layers.19"],
    }
    rows = []
    for version, prefixes in changes.items():
        changed = [n for n in tensors if any(n.startswith(p + ".") for p in prefixes)]
        for name in changed:
            tensors[name] = tensors[name] + np.float32(1e-3) * hf.f32(g, *tensors[name].shape)
        path = tmp_path / f"v{version}" / "model.safetensors"
        path.parent.mkdir()
        hf.save_safetensors(path, tensors)
        result, new = _ingest_measured(store, path)
        assert b"".join(store.get_chunk(c) for c, _ in result.manifest.chunks) == path.read_bytes()

        changed_bytes = sum(tensors[n].nbytes for n in changed)
        header = hf.safetensors_header_len(path)
        bound = int(changed_bytes * 1.02) + header
        growth = sum(new.values())
        rows.append((version, path.stat().st_size, changed_bytes, header, growth, bound))
        assert growth <= bound, f"v{version}: store grew {growth} bytes, bound {bound}"
        # and every changed tensor really is stored anew
        assert growth >= changed_bytes
    print("\nversion  file bytes  changed bytes  header  store growth  bound")
    for r in rows:
        print("v%-7d %10d %14d %7d %13d %6d" % r)


def test_inserted_tensor_costs_its_bytes_and_the_new_header(tmp_path: Path, capsys: Any) -> None:
    store = ChunkStore(tmp_path / "store")
    tensors = _base_model(1)
    old = hf.save_safetensors(tmp_path / "old.safetensors", tensors)
    ingest_file(store, old)

    inserted = hf.f32(hf.rng(2), 300, 256)  # 300 KiB, > 64 KiB
    tensors["layers.10a.weight"] = inserted  # between layers.10.weight and layers.11.bias, in header and data
    new_path = hf.save_safetensors(tmp_path / "new.safetensors", tensors)
    spans = hf.safetensors_spans(new_path)
    order = sorted(spans, key=lambda n: spans[n].offset)
    assert order.index("layers.10a.weight") == order.index("layers.10.weight") + 1
    assert 0 < order.index("layers.10a.weight") < len(order) - 1

    result, new = _ingest_measured(store, new_path)
    header = hf.safetensors_header_len(new_path)
    growth = sum(new.values())
    bound = inserted.nbytes + header
    print(
        f"\ninsertion: file {new_path.stat().st_size}, inserted {inserted.nbytes}, "
        f"header {header}, growth {growth}, bound {bound}"
    )
    assert growth <= bound


def test_appended_embedding_rows_reuse_every_full_piece(tmp_path: Path, capsys: Any) -> None:
    store = ChunkStore(tmp_path / "store")
    g = hf.rng(3)
    embed = hf.f32(g, 2200, 1024)  # 8.6 MiB: two full 4 MiB pieces and a tail
    rest = {f"layers.{i}.weight": hf.f32(g, 64, 256) for i in range(4)}
    old = hf.save_safetensors(tmp_path / "old.safetensors", {"embed": embed, **rest})
    first = ingest_file(store, old)

    grown = np.concatenate([embed, hf.f32(g, 10, 1024)])
    new_path = hf.save_safetensors(tmp_path / "new.safetensors", {"embed": grown, **rest})
    result, new = _ingest_measured(store, new_path)

    def pieces(res: IngestResult, path: Path) -> list[tuple[str, int]]:
        span = hf.safetensors_spans(path)["embed"]
        out, pos = [], 0
        for cid, n in res.manifest.chunks:
            if span.offset <= pos < span.offset + span.length:
                out.append((cid, n))
            pos += n
        return out

    old_pieces, new_pieces = pieces(first, old), pieces(result, new_path)
    assert [n for _, n in old_pieces] == [4 * MiB, 4 * MiB, embed.nbytes - 8 * MiB]
    assert [n for _, n in new_pieces] == [4 * MiB, 4 * MiB, grown.nbytes - 8 * MiB]
    assert new_pieces[:2] == old_pieces[:2]  # every full piece reused
    assert new_pieces[2][0] in new  # the tail piece is the only embedding bytes stored again
    header = hf.safetensors_header_len(new_path)
    growth = sum(new.values())
    bound = new_pieces[2][1] + header
    print(
        f"\nappend rows: embedding {grown.nbytes}, last piece {new_pieces[2][1]}, "
        f"header {header}, growth {growth}, bound {bound}"
    )
    assert growth <= bound


def test_gguf_pair_stores_only_the_changed_tensor(tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType

    store = ChunkStore(tmp_path / "store")
    g = hf.rng(4)
    base = [
        ("token_embd.weight", hf.f32(g, 256, 128), None),
        ("blk.0.attn_q.weight", hf.q8_0(g, 256, 256), GGMLQuantizationType.Q8_0),  # 68 KiB of Q8_0
        ("blk.0.ffn.weight", g.standard_normal((128, 512)).astype(np.float16), None),
        ("output.weight", hf.f32(g, 128, 256), None),
    ]
    kv = {"general.name": "pair", "tokenizer.ggml.tokens": [f"t{i}" for i in range(50)]}
    old = hf.write_gguf(tmp_path / "old.gguf", base, kv)
    ingest_file(store, old)

    changed = list(base)
    changed[2] = ("blk.0.ffn.weight", g.standard_normal((128, 512)).astype(np.float16), None)
    new_path = hf.write_gguf(tmp_path / "new.gguf", changed, kv)
    result, new = _ingest_measured(store, new_path)

    span = hf.gguf_spans(new_path)["blk.0.ffn.weight"]
    tensor_chunks, pos = set(), 0
    for cid, n in result.manifest.chunks:
        if span.offset <= pos < span.offset + span.length:
            assert pos + n <= span.offset + span.length
            tensor_chunks.add(cid)
        pos += n
    assert set(new) == tensor_chunks
    assert sum(new.values()) == span.length == 128 * 512 * 2
    assert result.manifest.size == new_path.stat().st_size


def test_torch_pair_stores_only_the_changed_member(tmp_path: Path, capsys: Any) -> None:
    import torch

    store = ChunkStore(tmp_path / "store")
    gen = torch.Generator().manual_seed(5)
    state = {
        "emb.weight": torch.randn(300, 64, generator=gen),
        "fc1.weight": torch.randn(128, 256, generator=gen),
        "fc1.bias": torch.randn(20000, generator=gen),
        "fc2.weight": torch.randn(256, 128, generator=gen),
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    old = hf.torch_save(tmp_path / "a" / "model.pt", state)
    ingest_file(store, old)
    state["fc1.weight"] = state["fc1.weight"] + 1e-3
    new_path = hf.torch_save(tmp_path / "b" / "model.pt", state)
    result, new = _ingest_measured(store, new_path)

    layout, data = hf.layout_of(new_path)
    assert layout.format == "pytorch"
    changed_bytes = state["fc1.weight"].numpy().tobytes()
    changed = [t for t in layout.tensors if data[t.offset : t.offset + t.length] == changed_bytes]
    unchanged = [t for t in layout.tensors if t not in changed]
    assert len(changed) == 1 and len(unchanged) == 3
    assert all(t.length >= 64 * KiB for t in layout.tensors)

    # no new chunk holds a byte of an unchanged tensor, and the changed tensor's bytes are new
    pos, new_spans = 0, []
    for cid, n in result.manifest.chunks:
        if cid in new:
            new_spans.append((pos, n))
        pos += n
    for off, n in new_spans:
        for t in unchanged:
            assert off + n <= t.offset or off >= t.offset + t.length, f"chunk at {off} re-stores {t.name}"
    c = changed[0]
    c_end = c.offset + c.length
    overlaps = [(off, n) for off, n in new_spans if off < c_end and off + n > c.offset]
    covered = sum(min(off + n, c_end) - max(off, c.offset) for off, n in overlaps)
    assert covered == c.length
    # what else is new is zip bookkeeping: local headers, data.pkl, ids, the central directory
    storage_bytes = sum(t.length for t in layout.tensors)
    print(
        f"\ntorch pair: file {len(data)}, changed storage {c.length}, "
        f"growth {sum(new.values())} in {len(new)} chunks"
    )
    assert sum(new.values()) - c.length <= len(data) - storage_bytes
