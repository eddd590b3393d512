"""Fixtures for the chunking tests: small real files of each format, written by their own libraries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import helpers_formats as hf  # tests/ is on sys.path, as for `from conftest import ...`


@pytest.fixture
def st_file(tmp_path: Path) -> Path:
    """A safetensors file with several dtypes, an empty tensor, metadata and a >4 MiB tensor."""
    g = hf.rng(1)
    tensors = {
        "embed.weight": hf.f32(g, 1100, 1024),  # 4.3 MiB: more than one piece
        "layers.0.attn.weight": hf.f32(g, 64, 64),
        "layers.0.norm": hf.f32(g, 64),
        "layers.0.half": g.standard_normal((32, 16)).astype(np.float16),
        "layers.0.steps": np.arange(7, dtype=np.int64),
        "layers.0.mask": np.array([True, False, True]),
        "layers.0.empty": np.zeros((0, 3), dtype=np.float32),
        "head.bytes": g.integers(0, 255, size=(5, 3), dtype=np.uint8),
    }
    return hf.save_safetensors(tmp_path / "model.safetensors", tensors, metadata={"format": "np", "note": "x"})


@pytest.fixture
def gguf_file(tmp_path: Path) -> Path:
    """A GGUF file with F32, F16 and a Q8_0 tensor quantized by gguf-py."""
    from gguf import GGMLQuantizationType

    g = hf.rng(2)
    tensors = [
        ("token_embd.weight", hf.f32(g, 40, 32), None),
        ("blk.0.attn_norm.weight", hf.f32(g, 7), None),  # 28 bytes: padding follows
        ("blk.0.ffn.weight", g.standard_normal((16, 24)).astype(np.float16), None),
        ("blk.0.attn_q.weight", hf.q8_0(g, 8, 64), GGMLQuantizationType.Q8_0),
        ("output.weight", hf.f32(g, 3, 5), None),
    ]
    kv = {
        "general.name": "tiny",
        "tiny.context_length": 128,
        "tiny.scale": 0.5,
        "tokenizer.ggml.tokens": ["a", "bb", "ccc"],
    }
    return hf.write_gguf(tmp_path / "model.gguf", tensors, kv)


@pytest.fixture
def torch_file(tmp_path: Path) -> Path:
    import torch

    gen = torch.Generator().manual_seed(3)
    state = {
        "linear.weight": torch.randn(40, 30, generator=gen),
        "linear.bias": torch.randn(40, generator=gen),
        "emb.weight": torch.randn(20, 8, generator=gen).to(torch.bfloat16),
        "steps": torch.arange(5),
    }
    return hf.torch_save(tmp_path / "model.pt", state)
