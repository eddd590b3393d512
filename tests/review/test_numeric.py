"""`diff --numeric` on every float type it knows (safetensors F32/F16/BF16, GGUF F32/F16), the figures
equal to numpy's on the original arrays; tensors over many chunks streamed in blocks that cut across them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import Repo
from tests.helpers_formats import q8_0, save_safetensors_torch, write_gguf
from tests.review.helpers import numpy_stats, only_model


def _numeric(repo: Repo, *args: str) -> dict[str, dict]:
    doc = json.loads(repo.gm("diff", "--numeric", "--json", *args).stdout)
    model = only_model(doc)
    out = {t["name"]: t for t in model["numeric"]["tensors"]}
    out.update({s["name"]: {"skipped": s["reason"]} for s in model["numeric"]["skipped"]})
    return out


def _check(got: dict, old: np.ndarray, new: np.ndarray) -> None:
    max_abs, rel, changed = numpy_stats(old, new)
    assert got["max_abs_diff"] == pytest.approx(max_abs, rel=1e-6)
    assert got["rel_l2"] == pytest.approx(rel, rel=1e-5)
    assert got["changed_fraction"] == pytest.approx(changed)
    assert got["elements"] == old.size


def test_gguf_f32_f16_and_a_quantized_tensor(committed_repo: Repo) -> None:
    repo = committed_repo
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((64, 32), dtype=np.float32)
    attn = rng.standard_normal((32, 32)).astype(np.float16)
    out = rng.standard_normal((32, 32)).astype(np.float16)
    quant = q8_0(rng, 32, 64)
    path = repo.path / "tiny.gguf"

    def write(e: np.ndarray, a: np.ndarray, q: np.ndarray) -> None:
        path.unlink(missing_ok=True)
        from gguf import GGMLQuantizationType

        write_gguf(path, [("token_embd.weight", e, None), ("blk.0.attn_q.weight", a, None),
                          ("blk.0.ffn_up.weight", q, GGMLQuantizationType.Q8_0), ("output.weight", out, None)])

    write(emb, attn, quant)
    repo.gm("add", "-q", "tiny.gguf", "--metric", "perplexity=12.5")
    repo.commit("v1")
    emb2 = emb.copy()
    emb2[:4] *= np.float32(1.5)  # a few rows moved
    attn2 = (attn.astype(np.float32) + np.float32(0.05)).astype(np.float16)
    write(emb2, attn2, q8_0(rng, 32, 64))
    repo.gm("add", "-q", "tiny.gguf", "--metric", "perplexity=11.0")

    model = only_model(json.loads(repo.gm("diff", "--json").stdout))
    assert [(t["name"], t["change"], t["new"]["dtype"]) for t in model["tensors"]] == [
        ("blk.0.attn_q.weight", "changed", "F16"), ("blk.0.ffn_up.weight", "changed", "Q8_0"),
        ("token_embd.weight", "changed", "F32"),
    ]
    assert model["tensors_total"] == 4 and model["bump"] == "minor"
    assert model["bytes_changed"] == 32 * 32 * 2 + 32 * 64 // 32 * 34 + 64 * 32 * 4
    assert [(m["name"], m["goal"], m["verdict"]) for m in model["metrics"]] == [("perplexity", "min", "better")]
    stats = _numeric(repo)
    _check(stats["token_embd.weight"], emb, emb2)
    assert stats["token_embd.weight"]["changed_fraction"] == pytest.approx(4 / 64)
    _check(stats["blk.0.attn_q.weight"], attn, attn2)
    assert stats["blk.0.ffn_up.weight"] == {
        "skipped": "Q8_0 is not a float type (compared: F64, F32, F16, BF16)"
    }
    assert "output.weight" not in stats  # unchanged: not read at all


def test_bf16_and_f16_safetensors(committed_repo: Repo) -> None:
    import torch

    repo = committed_repo
    gen = torch.Generator().manual_seed(0)
    old = {"a": torch.randn(48, 40, generator=gen).to(torch.bfloat16),
           "b": torch.randn(40, 24, generator=gen).to(torch.float16),
           "zero": torch.zeros(8, 8, dtype=torch.bfloat16)}
    save_safetensors_torch(repo.path / "h.safetensors", old)
    repo.gm("add", "-q", "h.safetensors")
    repo.commit("v1")
    new = {"a": (old["a"].float() * 1.01).to(torch.bfloat16), "b": (old["b"].float() - 0.002).to(torch.float16),
           "zero": torch.ones(8, 8, dtype=torch.bfloat16)}
    save_safetensors_torch(repo.path / "h.safetensors", new)
    repo.gm("add", "-q", "h.safetensors")
    stats = _numeric(repo)

    def bits16(t: torch.Tensor) -> np.ndarray:
        return t.view(torch.int16).numpy().view(np.uint16)

    # bf16 through numpy: the high half of a float32
    a_old = (bits16(old["a"]).astype(np.uint32) << 16).view(np.float32)
    a_new = (bits16(new["a"]).astype(np.uint32) << 16).view(np.float32)
    max_abs, rel, _ = numpy_stats(a_old, a_new)
    assert stats["a"]["dtype"] == "BF16"
    assert stats["a"]["max_abs_diff"] == pytest.approx(max_abs, rel=1e-6)
    assert stats["a"]["rel_l2"] == pytest.approx(rel, rel=1e-5)
    assert stats["a"]["changed_fraction"] == pytest.approx(np.mean(bits16(old["a"]) != bits16(new["a"])))
    _check(stats["b"], old["b"].numpy(), new["b"].numpy())
    assert stats["zero"]["rel_l2"] is None and stats["zero"]["max_abs_diff"] == 1.0  # old all zeros
    text = repo.gm("diff", "--numeric").stdout
    assert "zero  max|diff| 1  rel L2 n/a (old is zero)  changed 100.00%" in text


def test_tensors_over_many_chunks_in_blocks_across_them(committed_repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 12 MiB tensor spans several store chunks; odd block sizes cut across their boundaries."""
    from gitmodel import api, numeric
    from gitmodel.diff import diff
    from gitmodel.manifest import Manifest

    repo = committed_repo
    rng = np.random.default_rng(11)
    old = {"big": rng.standard_normal(3 << 20, dtype=np.float32), "small": rng.standard_normal(10, dtype=np.float32)}
    from conftest import make_safetensors

    make_safetensors(repo.path / "big.safetensors", old)
    repo.gm("add", "-q", "big.safetensors")
    repo.commit("v1")
    new = dict(old, big=old["big"].copy(), small=old["small"] * np.float32(2))
    new["big"][::1000] += np.float32(0.5)
    make_safetensors(repo.path / "big.safetensors", new)
    repo.gm("add", "-q", "big.safetensors")

    monkeypatch.chdir(repo.path)
    ws = api.Workspace(repo.path)
    d = diff(ws.git)
    md = d.models[0]
    assert md.new is not None
    manifest = Manifest.decode(ws.store.get_manifest(md.new.files[0].manifest), "m")  # type: ignore[arg-type]
    big = next(t for t in manifest.tensors if t.name == "big")
    inside = [n for cid, n in manifest.chunks]
    assert len(inside) >= 3, inside  # the tensor really is cut into chunks
    expected = numpy_stats(old["big"], new["big"])
    for block in (4 << 20, 1_000_004, 4 * 333_333):
        monkeypatch.setattr(numeric, "BLOCK", block)
        got = numeric.numeric_of(ws.store, d)[md.name]
        stats = {t.name: t for t in got.tensors}
        assert (stats["big"].max_abs_diff, stats["big"].changed_fraction) == pytest.approx(expected[::2])
        assert stats["big"].rel_l2 == pytest.approx(expected[1], rel=1e-5)
        assert stats["big"].elements == big.length // 4 == 3 << 20
        assert stats["small"].rel_l2 == pytest.approx(1.0)


def test_weights_missing_from_the_store(committed_repo: Repo) -> None:
    import shutil

    from tests.review.helpers import add, first_version, fine_tune

    repo = committed_repo
    add(repo, fine_tune(first_version(repo), ("layer1.weight",)))
    assert only_model(json.loads(repo.gm("diff", "--json").stdout))["tensors_changed"] == 1  # pointers suffice
    shutil.rmtree(repo.store)
    message = repo.gm_fails("diff", "--numeric")
    assert "are not in the store" in message and "git model pull" in message
