"""Real checkpoints, cut by the real chunker, each chunk coded with the dtype its parser found."""

from __future__ import annotations

from pathlib import Path

import helpers_formats as hf  # tests/ is on sys.path, as for `from conftest import ...`
import numpy as np
from codec_values import cid

from gitmodel import codecs
from gitmodel.chunking import Layout


def chunk_dtype(layout: Layout, offset: int, length: int) -> str | None:
    """The dtype the chunker will pass with a chunk: its tensor's, if the chunk lies inside one."""
    for t in layout.tensors:
        if t.offset <= offset and offset + length <= t.offset + t.length:
            return t.dtype
    return None


def store_and_restore(path: Path, parent: Path | None = None) -> tuple[int, int, dict[str, int]]:
    """(raw bytes, stored bytes, codec name -> chunk count) of coding the file chunk by chunk."""
    chunks, layout, data = hf.plan_of(path)
    parent_chunks: dict[tuple[int, int], bytes] = {}
    if parent is not None:
        p_chunks, _, p_data = hf.plan_of(parent)
        parent_chunks = {(off, n): p_data[off : off + n] for off, n in p_chunks}
    bases: dict[str, bytes] = {}
    restored = bytearray()
    stored = 0
    used: dict[str, int] = {}
    for off, n in chunks:
        piece = data[off : off + n]
        base_bytes = parent_chunks.get((off, n))  # the parent's chunk at the same place
        base = None if base_bytes is None or base_bytes == piece else codecs.Base(cid(base_bytes), base_bytes)
        if base is not None:
            bases[base.chunk_id] = base.data
        enc = codecs.choose(piece, chunk_dtype(layout, off, n), base)
        stored += len(enc.payload)
        used[codecs.codec_name(enc.codec)] = used.get(codecs.codec_name(enc.codec), 0) + 1
        restored += codecs.decode(enc.codec, enc.payload, n, cid(piece), load_base=bases.__getitem__)
    assert bytes(restored) == data
    return len(data), stored, used


def test_a_bf16_safetensors_checkpoint_and_its_next_training_step(tmp_path: Path) -> None:
    import torch

    gen = torch.Generator().manual_seed(0)
    master = {f"layers.{i}.weight": torch.randn(512, 1024, generator=gen) * 0.02 for i in range(3)}
    master["norm.weight"] = torch.ones(1024)
    v0 = hf.save_safetensors_torch(tmp_path / "v0.safetensors", {k: v.to(torch.bfloat16) for k, v in master.items()})
    stepped = {k: v + 1.4e-5 * torch.randn(v.shape, generator=gen) for k, v in master.items()}
    v1 = hf.save_safetensors_torch(tmp_path / "v1.safetensors", {k: v.to(torch.bfloat16) for k, v in stepped.items()})
    raw, stored, used = store_and_restore(v0)
    assert used.get("planes", 0) >= 3 and stored <= 0.70 * raw, (used, stored / raw)
    raw, stored, used = store_and_restore(v1, parent=v0)
    assert used.get("xor-delta", 0) >= 3 and stored <= 0.20 * raw, (used, stored / raw)


def test_fp16_and_fp32_safetensors_written_by_numpy(tmp_path: Path) -> None:
    gen = np.random.default_rng(1)
    path = hf.save_safetensors(tmp_path / "m.safetensors", {
        "a": (gen.standard_normal((700, 1000)) * 0.02).astype(np.float16),
        "b": (gen.standard_normal((300, 1001)) * 0.02).astype(np.float32),
        "c": gen.integers(0, 50000, (100_000,)).astype(np.int32),
    })
    raw, stored, used = store_and_restore(path)
    assert used.get("planes", 0) >= 3 and stored < 0.87 * raw, (used, stored / raw)


def test_a_gguf_file_with_quantized_and_float_tensors(tmp_path: Path) -> None:
    gen = np.random.default_rng(2)
    from gguf import GGMLQuantizationType

    path = hf.write_gguf(tmp_path / "m.gguf", [
        ("tok.weight", (hf.f32(gen, 512, 1024) * 0.02).astype(np.float16), None),
        ("q.weight", hf.q8_0(gen, 256, 1024), GGMLQuantizationType.Q8_0),
        ("norm.weight", np.ones(1024, dtype=np.float32), None),
    ])
    raw, stored, used = store_and_restore(path)
    assert used.get("planes", 0) >= 1 and stored < raw, (used, stored / raw)
