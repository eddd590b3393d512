"""`diff --numeric` figures against numpy's, in float64 on the original arrays, for every float type and
the values float32 arithmetic gets wrong (overflow, underflow, NaN, inf, -0.0, float32 ties), whatever
the block and piece sizes and the number of threads."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import Repo

# dtype name in safetensors -> numpy type of the values given, bit type, and a writer of the raw bytes
_BITS = {"F64": np.uint64, "F32": np.uint32, "F16": np.uint16, "BF16": np.uint16}


def _two_versions(repo: Repo, name: str, old: np.ndarray, new: np.ndarray) -> tuple[Any, Any]:
    """`name` = {"w": old} added and committed, then {"w": new} added: the workspace and the
    working tree's diff against HEAD, as `git model diff --numeric` computes it."""
    from conftest import make_safetensors
    from gitmodel import api
    from gitmodel.diff import diff

    make_safetensors(repo.path / name, {"w": old})
    repo.gm("add", "-q", name)
    repo.commit("v1")
    make_safetensors(repo.path / name, {"w": new})
    repo.gm("add", "-q", name)
    ws = api.Workspace(repo.path)
    return ws, diff(ws.git)


def _bf16(values: np.ndarray) -> np.ndarray:
    """float32 values exactly representable in bfloat16 (the low 16 bits cleared)."""
    return (values.astype(np.float32).view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)


def _typed(dtype: str, values: np.ndarray) -> np.ndarray:
    """The values in the numpy type holding `dtype` exactly (bf16 as float32 with 16 zero low bits)."""
    if dtype == "BF16":
        return _bf16(values)
    with np.errstate(over="ignore"):  # 3e38 as fp16 is inf, as intended
        return values.astype({"F64": np.float64, "F32": np.float32, "F16": np.float16}[dtype])


def _raw(dtype: str, values: np.ndarray) -> bytes:
    if dtype == "BF16":
        return (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    return values.astype(values.dtype.newbyteorder("<")).tobytes()


def write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """A safetensors file written from its specification (8-byte header length, JSON header, data),
    so that bf16 needs no torch."""
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        dtype, values = tensors[name]
        raw = _raw(dtype, values)
        header[name] = {"dtype": dtype, "shape": list(values.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def reference(dtype: str, old: np.ndarray, new: np.ndarray) -> tuple[float, float | None, float]:
    """numpy on the original arrays, in float64: max |new - old|, ||new - old|| / ||old|| (None when
    old is all zeros and new is not; 0 when both norms are 0) and the fraction of values whose bits differ."""
    a, b = old.astype(np.float64), new.astype(np.float64)
    with np.errstate(all="ignore"):
        d = b - a
        max_abs = float(np.max(np.abs(d))) if d.size else 0.0
        norm_d, norm_a = float(np.linalg.norm(d)), float(np.linalg.norm(a))
        rel: float | None = norm_d / norm_a if norm_a != 0 or math.isnan(norm_d) else (0.0 if norm_d == 0 else None)
    bits = _BITS[dtype]
    width = np.dtype(bits).itemsize
    ob = _raw(dtype, old)
    nb = _raw(dtype, new)
    changed = np.count_nonzero(np.frombuffer(ob, f"<u{width}") != np.frombuffer(nb, f"<u{width}"))
    return max_abs, rel, (changed / old.size if old.size else 0.0)


def _cases(dtype: str, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (old values, new values), already exact in `dtype`."""
    t = lambda v: _typed(dtype, np.asarray(v, dtype=np.float64))  # noqa: E731
    base = t(rng.standard_normal(3000))
    cases = {
        "fine": (base, t(base.astype(np.float64) * 1.001 + 1e-3 * rng.standard_normal(3000))),
        "nan_same": (t(np.r_[base[:50], np.nan, base[51:100]]), t(np.r_[base[:50] * 2, np.nan, base[51:100]])),
        "nan_new": (t(base[:100]), t(np.r_[base[:99], np.nan])),
        "inf_same": (t(np.r_[base[:10], np.inf]), t(np.r_[base[:10] + 1, np.inf])),
        "inf_new": (t(base[:100]), t(np.r_[-np.inf, base[1:100]])),
        "neg_zero": (t(np.zeros(64)), t(np.r_[np.zeros(60), -np.zeros(4)])),
        "zero_old": (t(np.zeros(64)), t(rng.standard_normal(64))),
        # float32 rounds both differences to 1.0; float64 tells them apart, the larger one last
        "tie": (t([1.0, 1.0, 1.0, 0.5] * 40), t([-(2.0 ** -30), 0.0, -(2.0 ** -29), 0.5] * 40)),
        # steps whose bits did not change (small steps) skip the differences, unless a NaN or an
        # inf that stayed makes them NaN; one value changed, in the last step
        "same_special": (t(np.r_[base[:20], np.nan, np.inf, -np.inf, base[23:100]]),
                         t(np.r_[base[:20], np.nan, np.inf, -np.inf, base[23:99], base[99] * 2])),
        "same_but_one": (t(base[:200]), t(np.r_[base[:150], base[150] + 1, base[151:200]])),
    }
    if dtype == "F64":  # squared differences (and old values) under float64's range: all 0, as numpy's;
        # and past it: inf (rel L2 inf / inf, NaN, as numpy's), the maximum among all the infinite squares
        cases["tiny"] = (t(rng.standard_normal(500) * 1e-170), t(rng.standard_normal(500) * 1e-170))
        cases["huge"] = (t(rng.standard_normal(500) * 1e160), t(rng.standard_normal(500) * 1e160))
    if dtype == "F16":  # 1024 + 2**-19 and 1024 + 2**-20 round to 1024 in float32
        cases["tie"] = (t([1024.0, 1024.0, 3.0] * 40), t([-(2.0 ** -20), -(2.0 ** -19), 3.0] * 40))
    if dtype in ("F32", "BF16"):
        cases.update({
            "overflow": (t([3e38, -3e38, 1.0] * 20), t([-3e38, 3e38, 1.0] * 20)),  # differences past float32's range
            "huge": (t(rng.standard_normal(500) * 1e25), t(rng.standard_normal(500) * 1e25)),  # squares past it
            "tiny": (t(rng.standard_normal(500) * 1e-30), t(rng.standard_normal(500) * 1e-30)),  # squares under it
        })
    return {f"{dtype.lower()}.{name}": pair for name, pair in cases.items()}


def _assert_matches(got: Any, dtype: str, old: np.ndarray, new: np.ndarray) -> None:
    max_abs, rel, changed = reference(dtype, old, new)
    assert got.dtype == dtype and got.elements == old.size
    if math.isnan(max_abs):
        assert math.isnan(got.max_abs_diff), (got, max_abs)
    else:
        assert got.max_abs_diff == max_abs, (got, max_abs)  # exact: numpy's float64 figure
    if rel is None or math.isnan(rel) or math.isinf(rel):
        assert got.rel_l2 is rel or (rel is not None and got.rel_l2 is not None
                                     and (math.isnan(rel) and math.isnan(got.rel_l2) or got.rel_l2 == rel)), (got, rel)
    else:
        assert got.rel_l2 == pytest.approx(rel, rel=1e-6, abs=0), (got, rel)
    assert got.changed_fraction == changed, (got, changed)


@pytest.fixture(scope="module")
def special_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Repo, dict[str, tuple[str, np.ndarray, np.ndarray]]]:
    """One committed version of a file holding every case of every dtype, and the next in the work tree."""
    from conftest import new_repo

    base = tmp_path_factory.mktemp("numeric-exact")
    repo = new_repo(base / "repo", base / "home")
    rng = np.random.default_rng(int(os.environ.get("GITMODEL_SEED", "5")))
    cases = {name: (dtype, old, new) for dtype in _BITS for name, (old, new) in _cases(dtype, rng).items()}
    path = repo.path / "special.safetensors"
    write_safetensors(path, {name: (dtype, old) for name, (dtype, old, _) in cases.items()})
    repo.gm("add", "-q", "special.safetensors")
    repo.commit("v1")
    write_safetensors(path, {name: (dtype, new) for name, (dtype, _, new) in cases.items()})
    repo.gm("add", "-q", "special.safetensors")
    return repo, cases


# (block bytes, piece bytes): the defaults; steps of 7 to 333 values in pieces of 6 to 50 values, so that
# steps end inside chunks and pieces start inside them, on several threads
SIZES = [(None, None), (28, 100), (4 * 333, 52)]


@pytest.mark.parametrize("block,piece", SIZES)
def test_every_dtype_and_special_value_matches_numpy(special_repo: Any, monkeypatch: pytest.MonkeyPatch,
                                                    block: int | None, piece: int | None) -> None:
    from gitmodel import api, numeric
    from gitmodel.diff import diff

    repo, cases = special_repo
    if block is not None:
        monkeypatch.setattr(numeric, "BLOCK", block)
        monkeypatch.setattr(numeric, "PIECE", piece)
    ws = api.Workspace(repo.path)
    result = numeric.numeric_of(ws.store, diff(ws.git))
    (nd,) = result.values()
    got = {t.name: t for t in nd.tensors}
    assert not nd.skipped
    # a tensor whose bits did not change is not compared (none here: every case changed)
    assert sorted(got) == sorted(cases)
    for name, (dtype, old, new) in cases.items():
        _assert_matches(got[name], dtype, old, new)


def test_figures_do_not_depend_on_threads_or_pieces(special_repo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces are added up in order: one thread or eight, the same figures to the last bit."""
    from gitmodel import api, numeric
    from gitmodel.diff import diff

    repo, _ = special_repo
    ws = api.Workspace(repo.path)
    d = diff(ws.git)
    monkeypatch.setattr(numeric, "BLOCK", 40)
    monkeypatch.setattr(numeric, "PIECE", 400)
    runs = []
    for cpus in (1, 2, 8):
        monkeypatch.setattr(os, "cpu_count", lambda cpus=cpus: cpus)
        runs.append(repr(numeric.numeric_of(ws.store, d)))
    assert runs[0] == runs[1] == runs[2]


def test_rendered_nan_and_inf(special_repo: Any) -> None:
    """JSON has no NaN or infinity: such a figure is null; the text says nan / inf."""
    repo, cases = special_repo
    doc = json.loads(repo.gm("diff", "--numeric", "--json").stdout)
    stats = {t["name"]: t for t in doc["models"][0]["numeric"]["tensors"]}
    assert stats["f32.nan_same"]["max_abs_diff"] is None and stats["f32.nan_same"]["rel_l2"] is None
    assert stats["f32.nan_same"]["changed_fraction"] == pytest.approx(50 / 100)
    assert stats["bf16.inf_new"]["max_abs_diff"] is None
    max_abs, rel, _ = reference(*cases["f32.overflow"])
    assert max_abs == pytest.approx(6e38) and rel == pytest.approx(2.0)
    assert stats["f32.overflow"]["max_abs_diff"] == max_abs and stats["f32.overflow"]["rel_l2"] == pytest.approx(rel)
    assert stats["f16.zero_old"]["rel_l2"] is None
    text = repo.gm("diff", "--numeric").stdout
    assert "f32.nan_same  max|diff| nan  rel L2 nan  changed 50.00%" in text
    assert "f32.inf_new  max|diff| inf  rel L2 inf  changed 1.00%" in text
    assert "f64.neg_zero  max|diff| 0  rel L2 0  changed 6.25%" in text


def test_unchanged_chunks_of_a_changed_tensor_are_read_once(committed_repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 12 MiB tensor (three 4 MiB chunks) whose first chunk alone changed: the new version's other
    two chunks are the old one's, already read and verified, so the store decodes 3 + 1 chunks; pieces
    that start inside chunks give the same figures."""
    from gitmodel import numeric
    from gitmodel.store.objects import ChunkStore

    repo = committed_repo
    rng = np.random.default_rng(int(os.environ.get("GITMODEL_SEED", "7")))
    old = {"big": rng.standard_normal(3 << 20, dtype=np.float32)}
    new = {"big": old["big"].copy()}
    new["big"][:1000] *= np.float32(1.5)
    ws, d = _two_versions(repo, "big.safetensors", old["big"], new["big"])
    reads: list[str] = []
    real, real_into = ChunkStore.read_chunk, ChunkStore.read_chunk_into

    def counted(self: ChunkStore, cid: Any, known: Any = None) -> Any:
        reads.append(cid)
        return real(self, cid, known)

    def counted_into(self: ChunkStore, cid: Any, out: Any, known: Any = None) -> None:
        reads.append(cid)
        real_into(self, cid, out, known)

    monkeypatch.setattr(ChunkStore, "read_chunk", counted)
    monkeypatch.setattr(ChunkStore, "read_chunk_into", counted_into)
    expected = reference("F32", old["big"], new["big"])
    for piece in (16 << 20, (5 << 20) + 12):
        reads.clear()
        monkeypatch.setattr(numeric, "PIECE", piece)
        (nd,) = numeric.numeric_of(ws.store, d).values()
        (got,) = nd.tensors
        _assert_matches(got, "F32", old["big"], new["big"])
        assert got.changed_fraction == expected[2] == 1000 / (3 << 20)
        if piece == 16 << 20:
            assert len(reads) == 4 and len(set(reads)) == 4, reads


def test_allocator_thresholds_set_on_glibc() -> None:
    """The CLI's `diff --numeric` keeps freed chunk buffers (gitmodel.allocator); glibc takes the setting."""
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the thresholds are glibc's")
    # in a process of its own: the setting is the whole process's
    done = subprocess.run([sys.executable, "-c", "from gitmodel.allocator import keep_freed_memory as k; print(k())"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


class _Bytes:
    """A reader over bytes in memory, as numeric's readers over the store are."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self.pos = 0

    def read(self, n: int) -> memoryview:
        out = self.view[self.pos:self.pos + n]
        self.pos += len(out)
        return out


_SPECIAL = [0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-30, 1e25, 2.0 ** -30, 65504.0, 6e-8]


def test_random_arrays_with_special_values_match_numpy() -> None:
    """Random tensors of every float type, values drawn among normal ones and the special ones float32
    gets wrong, compared in random steps and pieces (added up in order, as numeric_diff does)."""
    from tests.reliability.budget import budget, seed

    from gitmodel import numeric

    run_seed = seed()
    rng = np.random.default_rng(run_seed)
    for case in range(budget(60, 2000)):
        dtype = str(rng.choice(list(_BITS)))
        size = int(rng.integers(1, 400))
        old = rng.standard_normal(size) * 10.0 ** rng.integers(-3, 4)
        new = old * (1 + rng.standard_normal(size) * 1e-3) if rng.random() < 0.7 else rng.standard_normal(size)
        for arr in (old, new):  # a few special values, in places of their own in each version
            at = rng.integers(0, size, int(rng.integers(0, 4)))
            arr[at] = rng.choice(_SPECIAL, len(at))
        a, b = _typed(dtype, old), _typed(dtype, new)
        width = np.dtype(_BITS[dtype]).itemsize
        ra, rb = _raw(dtype, a), _raw(dtype, b)
        block = int(rng.integers(1, 64)) * 4
        piece = int(rng.integers(1, 100)) * width
        total = numeric._Sums()
        old_block = numeric.BLOCK
        numeric.BLOCK = block
        try:
            for start in range(0, len(ra), piece):
                part = slice(start, start + piece)
                total.add(numeric._compare("t", dtype, _Bytes(ra[part]), _Bytes(rb[part]),  # type: ignore[arg-type]
                                           len(ra[part])))
        finally:
            numeric.BLOCK = old_block
        got = numeric._stats("t", dtype, len(ra), total)
        try:
            _assert_matches(got, dtype, a, b)
        except AssertionError as exc:
            raise AssertionError(f"case {case} of seed {run_seed} (GITMODEL_SEED={run_seed} replays it): {exc}") from None


def test_a_reused_chunk_buffer_leaves_the_readers_recent_chunks() -> None:
    """A thread's chunk buffers are taken in turn; the one taken again no longer stands for the
    chunk it held, so the other version's reader cannot take its new bytes as that chunk."""
    from gitmodel import numeric

    pool = numeric._Buffers()
    recent: dict[str, bytes | bytearray] = {}
    first = pool.take(8, recent, "c0")
    recent["c0"] = first
    for k in range(1, numeric._POOLED):
        recent[f"c{k}"] = pool.take(8, recent, f"c{k}")
    assert "c0" in recent and len({id(b) for b in recent.values()}) == numeric._POOLED
    again = pool.take(8, None, "other")
    assert again is first and "c0" not in recent and "c1" in recent
    assert len(pool.take(16, None, "larger")) == 16  # a chunk of another size gets a buffer of its size


def test_shared_and_changed_chunks_in_turn_through_reused_buffers(committed_repo: Repo,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A 24 MiB tensor (six 4 MiB chunks) whose chunks 0, 2 and 4 changed: the new version's reader
    takes chunks 1, 3 and 5 from the old one's buffers while both readers' buffers are reused; the
    figures are numpy's, in pieces of 16 MiB and in pieces that start inside chunks."""
    from gitmodel import numeric

    repo = committed_repo
    rng = np.random.default_rng(int(os.environ.get("GITMODEL_SEED", "9")))
    old = {"big": rng.standard_normal(6 << 20, dtype=np.float32)}
    new = {"big": old["big"].copy()}
    for k in (0, 2, 4):
        new["big"][k << 20:(k + 1) << 20] *= np.float32(1.001)
    new["big"][(4 << 20) + 7] = 100.0  # the maximum, in a changed chunk after the buffers were reused
    ws, d = _two_versions(repo, "big.safetensors", old["big"], new["big"])
    for piece in (16 << 20, (3 << 20) + 4):
        monkeypatch.setattr(numeric, "PIECE", piece)
        (nd,) = numeric.numeric_of(ws.store, d).values()
        (got,) = nd.tensors
        _assert_matches(got, "F32", old["big"], new["big"])


def test_a_delta_chunk_is_read_into_a_reused_buffer_against_the_old_chunk(
    committed_repo: Repo, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The new version of a fine-tuned tensor is stored as a delta of the old one's chunk: the diff
    reads it into one of its chunk buffers, decoded against the old chunk it already holds
    (read_chunk_into with `known`), not into fresh memory by read_chunk; the figures are exact."""
    from gitmodel import numeric
    from gitmodel.codecs import CODEC_XOR_DELTA
    from gitmodel.store.objects import ChunkStore

    repo = committed_repo
    rng = np.random.default_rng(int(os.environ.get("GITMODEL_SEED", "7")))
    old = {"w": rng.standard_normal(1 << 20, dtype=np.float32)}
    bits = old["w"].view(np.uint32).copy()
    bits[rng.random(bits.size) < 0.25] ^= 1  # an optimizer step: a quarter of the values move one ulp
    new = {"w": bits.view(np.float32)}
    ws, d = _two_versions(repo, "w.safetensors", old["w"], new["w"])
    into: list[tuple[str, bool]] = []
    whole: list[str] = []
    real, real_into = ChunkStore.read_chunk, ChunkStore.read_chunk_into

    def counted(self: ChunkStore, cid: Any, known: Any = None) -> Any:
        whole.append(cid)
        return real(self, cid, known)

    def counted_into(self: ChunkStore, cid: Any, out: Any, known: Any = None) -> None:
        loc = self.locate(cid)
        if loc is not None and loc.codec == CODEC_XOR_DELTA:
            into.append((cid, known is not None and self.base_id(loc).hex() in known))
        real_into(self, cid, out, known)

    monkeypatch.setattr(ChunkStore, "read_chunk", counted)
    monkeypatch.setattr(ChunkStore, "read_chunk_into", counted_into)
    (nd,) = numeric.numeric_of(ws.store, d).values()
    (got,) = nd.tensors
    _assert_matches(got, "F32", old["w"], new["w"])
    assert into and all(with_base for _, with_base in into), into  # every delta, against the held base
    assert not set(whole) & {cid for cid, _ in into}, whole
