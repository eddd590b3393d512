"""Measure every chunk codec and its peers (blosc2, ZipNN) on generated weights and checkpoint deltas.

    python benchmarks/codecs.py [--mib 64] [--markdown] [--json FILE]
    python benchmarks/codecs.py --file model.safetensors [--repeat 5]    # the chooser on a checkpoint's own chunks

Prints one table: for each data set and method, the stored size as a fraction of raw, encode
and decode speed in MB/s per core (raw bytes over CPU seconds of this one thread) and the CPU
seconds. Data is encoded in 4 MiB chunks, as the chunker cuts tensors. Peers that are not
installed are skipped with a note (pip install blosc2 zipnn).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitmodel import codecs  # noqa: E402
from gitmodel.codecs import delta  # noqa: E402
from gitmodel.codecs.choose import delta_layout  # noqa: E402
from gitmodel.codecs.dtypes import layout_for  # noqa: E402

MIB = 1 << 20
CHUNK = 4 * MIB  # the chunker's piece size
STD = 0.02
# Optimizer steps as Adam takes them: every weight moves by about the same amount, whatever
# its size. STEP moves ~25% of bf16 values to another bf16 value (consecutive checkpoints of
# a training run, as the issue measures them); FAR moves ~88% (checkpoints saved far apart).
STEP = 1.4e-5
FAR = 3e-4


def bf16_bits(weights: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bit patterns (uint16), rounding to nearest even, as torch does."""
    u = weights.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def master_weights(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, STD, count).astype(np.float32)


def step(weights: np.ndarray, size: float, seed: int) -> np.ndarray:
    """The weights after an optimizer step of about `size` on every weight."""
    noise = np.random.default_rng(seed).standard_normal(weights.size).astype(np.float32)
    return (weights + np.float32(size) * noise).astype(np.float32)


def changed_fraction(a: bytes, b: bytes, width: int) -> float:
    dt = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[width]
    return float((np.frombuffer(a, dt) != np.frombuffer(b, dt)).mean())


@dataclass(frozen=True)
class DataSet:
    name: str
    dtype: str  # as safetensors names it
    width: int
    data: bytes
    base: bytes | None = None  # for deltas: the parent checkpoint

    @property
    def changed(self) -> float | None:
        return None if self.base is None else changed_fraction(self.base, self.data, self.width)


def datasets(mib: int, seed: int) -> list[DataSet]:
    n16 = mib * MIB // 2
    w = master_weights(seed, n16)
    v0 = bf16_bits(w).tobytes()
    v1 = bf16_bits(step(w, STEP, seed + 1)).tobytes()
    far = bf16_bits(step(w, FAR, seed + 2)).tobytes()
    fp16 = w.astype(np.float16).tobytes()
    fp32 = master_weights(seed + 3, mib * MIB // 4).tobytes()
    sets = [
        DataSet("bf16 checkpoint", "BF16", 2, v0),
        DataSet("fp16 checkpoint", "F16", 2, fp16),
        DataSet("fp32 checkpoint", "F32", 4, fp32),
    ]
    fp8 = fp8_e4m3(master_weights(seed + 4, mib * MIB))
    if fp8 is not None:
        sets.append(DataSet("fp8 E4M3 checkpoint", "F8_E4M3", 1, fp8))
    return sets + [
        DataSet("bf16 consecutive delta", "BF16", 2, v1, v0),
        DataSet("bf16 far-apart delta", "BF16", 2, far, v0),
    ]


def fp8_e4m3(weights: np.ndarray) -> bytes | None:
    """fp8 E4M3 bytes of `weights` scaled so the largest maps to 448, as fp8 checkpoints are
    saved; None without torch (numpy has no fp8), and the row is then left out."""
    try:
        import torch
    except ImportError:
        return None
    t = torch.from_numpy(weights)
    scaled = t * (torch.finfo(torch.float8_e4m3fn).max / t.abs().max())
    return bytes(scaled.to(torch.float8_e4m3fn).view(torch.uint8).numpy().tobytes())


@dataclass
class Row:
    data: str
    method: str
    ratio: float
    encode_mb_s: float
    decode_mb_s: float
    encode_cpu_s: float
    decode_cpu_s: float
    note: str = ""
    encode_2threads_mb_s: float | None = None  # wall clock, 2 threads, the whole data set
    decode_2threads_mb_s: float | None = None


# Each timing is the least CPU time of this many runs: the machine is shared, and a first run
# also pays for page faults. Set by --repeat.
REPEAT = {"runs": 3}


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    """(result, least CPU seconds of REPEAT["runs"] runs)."""
    best = float("inf")
    result = None
    for _ in range(REPEAT["runs"]):
        t0 = time.process_time()
        result = work()
        best = min(best, time.process_time() - t0)
    return result, best


Encoder = Callable[[bytes, bytes | None], Any]
Decoder = Callable[[Any, bytes, bytes | None], bytes]


def _pieces(ds: DataSet) -> list[tuple[bytes, bytes | None]]:
    out = []
    for off in range(0, len(ds.data), CHUNK):
        base = ds.base[off : off + CHUNK] if ds.base is not None else None
        out.append((ds.data[off : off + CHUNK], base))
    return out


def measure(ds: DataSet, method: str, encode: Encoder, size_of: Callable[[Any], int], decode: Decoder) -> Row:
    pieces = _pieces(ds)
    encoded, enc_cpu = timed(lambda: [encode(raw, base) for raw, base in pieces])
    _, dec_cpu = timed(lambda: [decode(enc, raw, base) for (raw, base), enc in zip(pieces, encoded)])
    for (raw, base), enc in zip(pieces, encoded):  # correctness, outside the timing
        if bytes(decode(enc, raw, base)) != raw:
            raise SystemExit(f"{method} on {ds.name}: decoded bytes differ")
    total = len(ds.data)
    stored = sum(size_of(e) for e in encoded)
    return Row(ds.name, method, stored / total, total / 1e6 / max(enc_cpu, 1e-9),
               total / 1e6 / max(dec_cpu, 1e-9), enc_cpu, dec_cpu)


def _xor(raw: bytes, base: bytes | None) -> bytes:
    return raw if base is None else delta.xor_with(raw, base)


def ours(ds: DataSet) -> list[Row]:
    import xxhash

    layout = layout_for(ds.dtype)
    pieces = _pieces(ds)
    ids = [xxhash.xxh3_128_hexdigest(raw) for raw, _ in pieces]  # the store knows them: untimed

    def as_base(base: bytes | None) -> codecs.Base | None:
        return None if base is None else codecs.Base(xxhash.xxh3_128_hexdigest(base), base)

    bases = [as_base(base) for _, base in pieces]

    def decode_all(encoded: list[codecs.Encoding], load: Callable[[int], codecs.LoadBase]) -> list[bytes]:
        return [bytes(codecs.decode(e.codec, e.payload, len(raw), cid, load_base=load(i)))
                for i, ((raw, _), e, cid) in enumerate(zip(pieces, encoded, ids))]

    def in_memory(i: int) -> codecs.LoadBase:
        base = pieces[i][1]
        return lambda _cid: base or b""

    def run(method: str, encode: Callable[[bytes, codecs.Base | None], codecs.Encoding],
            load: Callable[[int], codecs.LoadBase] = in_memory, two_threads: bool = False) -> Row:
        encoded, enc_cpu = timed(lambda: [encode(raw, base) for (raw, _), base in zip(pieces, bases)])
        outs, dec_cpu = timed(lambda: decode_all(encoded, load))
        if b"".join(outs) != ds.data:
            raise SystemExit(f"{method} on {ds.name}: decoded bytes differ")
        total = len(ds.data)
        names = sorted({codecs.codec_name(e.codec) for e in encoded})
        row = Row(ds.name, method, sum(len(e.payload) for e in encoded) / total,
                  total / 1e6 / max(enc_cpu, 1e-9), total / 1e6 / max(dec_cpu, 1e-9), enc_cpu, dec_cpu,
                  "chose " + "+".join(names) if "chooser" in method else "")
        if two_threads:  # zstd and numpy release the GIL: what 2 cores give, by the wall clock
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(2) as pool:
                t0 = time.perf_counter()
                encoded = list(pool.map(lambda pb: encode(pb[0][0], pb[1]), zip(pieces, bases)))
                row.encode_2threads_mb_s = total / 1e6 / (time.perf_counter() - t0)
                t0 = time.perf_counter()
                list(pool.map(lambda i: codecs.decode(encoded[i].codec, encoded[i].payload, len(pieces[i][0]),
                                                      ids[i], load_base=load(i)), range(len(pieces))))
                row.decode_2threads_mb_s = total / 1e6 / (time.perf_counter() - t0)
        return row

    rows = []
    if ds.base is None:
        rows.append(run("git-model zstd-1 (codec 1)", lambda raw, _b: codecs.encode_with(codecs.CODEC_ZSTD, raw)))
        rows.append(run("git-model planes (codec 2)",
                        lambda raw, _b: codecs.encode_with(codecs.CODEC_PLANES, raw, layout)))
        rows.append(run("git-model chooser", lambda raw, _b: codecs.choose(raw, ds.dtype), two_threads=True))
    else:
        rows.append(run("git-model xor+zstd-1 (codec 3/1)", lambda raw, b: codecs.encode_with(
            codecs.CODEC_XOR_DELTA, raw, base=b, inner=codecs.CODEC_ZSTD)))
        rows.append(run("git-model xor+planes (codec 3/2)", lambda raw, b: codecs.encode_with(
            codecs.CODEC_XOR_DELTA, raw, delta_layout(layout), base=b, inner=codecs.CODEC_PLANES)))
        rows.append(run("git-model chooser", lambda raw, b: codecs.choose(raw, ds.dtype, b), two_threads=True))
        # A checkout reads the base too: here each base is stored as the chooser stores a whole
        # checkpoint, and decoding a delta decodes its base first (a chain of depth 1).
        stored_bases = [codecs.choose(base or b"", ds.dtype) for _, base in pieces]

        def through_chain(i: int) -> codecs.LoadBase:
            enc, base = stored_bases[i], pieces[i][1] or b""
            return lambda cid: codecs.decode(enc.codec, enc.payload, len(base), cid)

        rows.append(run("git-model chooser, read with its base", lambda raw, b: codecs.choose(raw, ds.dtype, b),
                        load=through_chain, two_threads=True))
    return rows


def peers(ds: DataSet, notes: list[str]) -> list[Row]:
    rows = []
    prefix = "xor + " if ds.base is not None else ""
    try:
        import blosc2
    except ImportError:
        notes.append("blosc2 not installed: pip install blosc2")
    else:
        blosc2.set_nthreads(1)
        params = {"codec": blosc2.Codec.ZSTD, "clevel": 1, "typesize": ds.width,
                  "filters": [blosc2.Filter.SHUFFLE], "splitmode": blosc2.SplitMode.ALWAYS_SPLIT}
        rows.append(measure(
            ds, f"{prefix}blosc2 {blosc2.__version__} shuffle+zstd-1 (1 thread)",
            lambda raw, base: blosc2.compress2(_xor(raw, base), **params), len,
            lambda enc, raw, base: _xor(blosc2.decompress2(enc), base),
        ))
    try:
        import zipnn
    except ImportError:
        notes.append("zipnn not installed: pip install zipnn")
    else:
        kind = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}.get(ds.dtype)
        if kind is None:
            notes.append(f"ZipNN has no {ds.dtype} mode: not run on {ds.name}")
            return rows + _zstd_row(ds, prefix)
        zn = zipnn.ZipNN(bytearray_dtype=kind, threads=1)
        from importlib.metadata import version

        rows.append(measure(
            ds, f"{prefix}ZipNN {version('zipnn')} (1 thread)",
            # ZipNN 0.5.4 rewrites the buffer it compresses, even a bytes object: give it a copy.
            lambda raw, base: zn.compress(bytearray(_xor(raw, base))), len,
            lambda enc, raw, base: _xor(bytes(zn.decompress(enc)), base),
        ))
    return rows + _zstd_row(ds, prefix)


def _zstd_row(ds: DataSet, prefix: str) -> list[Row]:
    import zstandard

    zc = zstandard.ZstdCompressor(level=1)
    zd = zstandard.ZstdDecompressor()
    return [measure(
        ds, f"{prefix}zstd-1 whole chunk (zstandard {zstandard.__version__})",
        lambda raw, base: zc.compress(_xor(raw, base)), len,
        lambda enc, raw, base: _xor(zd.decompress(enc), base),
    )]


def primitives(seed: int) -> list[str]:
    """The figures behind two decisions: numpy for planes and XOR, and the plane's zstd settings."""
    import zstandard

    from gitmodel.codecs import planes
    from gitmodel.codecs.basic import compressor
    from gitmodel.codecs.planes import PlaneLayout

    w = master_weights(seed, CHUNK // 2)
    chunk = bf16_bits(w).tobytes()
    other = bf16_bits(step(w, STEP, seed + 1)).tobytes()
    n = len(chunk)
    lines = []

    def rate(work: Callable[[], Any]) -> str:
        _, cpu = timed(work)
        return f"{n / 1e6 / max(cpu, 1e-9):,.0f} MB/s"

    lo, hi = chunk[0::2], chunk[1::2]

    def py_merge() -> bytearray:
        out = bytearray(n)
        out[0::2], out[1::2] = lo, hi
        return out

    layout = PlaneLayout(2, 0)
    split, _ = planes.split(chunk, layout)
    lines.append(f"split a 4 MiB bf16 chunk into 2 planes: numpy {rate(lambda: planes.split(chunk, layout))}, "
                 f"Python slices {rate(lambda: (chunk[0::2], chunk[1::2]))}")
    lines.append(f"merge 2 planes: numpy {rate(lambda: planes.merge([split[0], split[1]], b'', layout))}, "
                 f"Python slice assignment {rate(py_merge)}")
    lines.append(f"XOR two 4 MiB chunks: numpy {rate(lambda: delta.xor_with(chunk, other))}, Python ints "
                 + rate(lambda: (int.from_bytes(chunk, "little") ^ int.from_bytes(other, "little")).to_bytes(n, "little")))
    level1 = zstandard.ZstdCompressor(level=1)
    for rotate in (0, 1):
        top = planes.split(chunk, PlaneLayout(2, rotate))[0][1].tobytes()
        counts = np.bincount(np.frombuffer(top, np.uint8), minlength=256)
        p = counts[counts > 0] / counts.sum()
        entropy = float(-(p * np.log2(p)).sum() / 8)
        lines.append(
            f"bf16 top plane, {'rotated' if rotate else 'not rotated'}: zstd level 1 "
            f"{len(level1.compress(top)) / len(top):.3f} of the plane, plane settings "
            f"{len(compressor('plane').compress(top)) / len(top):.3f}, order-0 entropy {entropy:.3f}")
    return lines


def _two(r: Row) -> str:
    if r.encode_2threads_mb_s is None or r.decode_2threads_mb_s is None:
        return "-"
    return f"{r.encode_2threads_mb_s:.0f}, {r.decode_2threads_mb_s:.0f}"


def file_chunks(path: Path) -> list[tuple[memoryview, str | None]]:
    """FILE's chunks as `git model add` cuts them, each with the dtype add gives the chooser
    (its tensors' dtype where they share one, else None): a raw store's manifest, made in a
    temporary directory. Chunk sizes decide what the chooser's sample costs, so generated
    4 MiB chunks do not stand for a checkpoint's."""
    import bisect
    import shutil
    import tempfile

    from gitmodel.ingest import ingest_file
    from gitmodel.manifest import Manifest
    from gitmodel.store import ChunkStore
    from gitmodel.store.objects import ManifestId

    tmp = Path(tempfile.mkdtemp(prefix="codecs-file-"))
    try:
        store = ChunkStore(tmp / "store", zstd_level=0)
        made = ingest_file(store, path)
        manifest = Manifest.decode(store.get_manifest(ManifestId(made.manifest_id)), made.manifest_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    data = memoryview(path.read_bytes())
    tensors = sorted((t.offset, t.offset + t.length, t.dtype) for t in manifest.tensors)
    starts = [t[0] for t in tensors]
    out: list[tuple[memoryview, str | None]] = []
    pos = 0
    for _, n in manifest.chunks:
        first = max(bisect.bisect_right(starts, pos) - 1, 0)
        last = bisect.bisect_left(starts, pos + n)
        dtypes = {t[2] for t in tensors[first:last] if t[0] < pos + n and t[1] > pos}
        out.append((data[pos : pos + n], dtypes.pop() if len(dtypes) == 1 else None))
        pos += n
    return out


def file_row(path: Path) -> dict[str, Any]:
    """The chooser and the decoder on FILE's own chunks, one thread: CPU s per GiB (least of
    --repeat runs), bytes stored over raw, the chunk count and sizes, the codecs chosen."""
    from gitmodel.codecs.registry import DecodeContext

    chunks = file_chunks(path)
    total = sum(len(c) for c, _ in chunks)
    encoded, enc_cpu = timed(lambda: [codecs.choose(c, d) for c, d in chunks])
    room = memoryview(bytearray(max((len(c) for c, _ in chunks), default=0)))
    ctx = DecodeContext(str(path), None)

    def decode_all() -> None:
        for (c, _), e in zip(chunks, encoded):
            codecs.decode_into(e.codec, e.payload, room[: len(c)], ctx)

    _, dec_cpu = timed(decode_all)
    for (c, _), e in zip(chunks, encoded):  # the round trip, checked outside the timing
        codecs.decode_into(e.codec, e.payload, room[: len(c)], ctx)
        if room[: len(c)] != c:
            raise SystemExit(f"{path}: a chunk did not round-trip")
    sizes = sorted(len(c) for c, _ in chunks)
    chosen: dict[str, int] = {}
    for (c, _), e in zip(chunks, encoded):
        name = codecs.codec_name(e.codec)
        chosen[name] = chosen.get(name, 0) + len(c)
    gib = total / (1 << 30)
    return {"file": str(path), "bytes": total, "chunks": len(chunks),
            "median_chunk": sizes[len(sizes) // 2] if sizes else 0,
            "ratio": sum(len(e.payload) for e in encoded) / max(total, 1),
            "choose_cpu_s_per_gib": enc_cpu / gib, "decode_cpu_s_per_gib": dec_cpu / gib,
            "chosen": {k: v / max(total, 1) for k, v in sorted(chosen.items())}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="raw size of each data set (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=REPEAT["runs"], help="runs per timing, least CPU time kept (default 3)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--no-peers", action="store_true", help="run only git-model's codecs")
    parser.add_argument("--file", type=Path, action="append", default=[],
                        help="instead, the chooser and decoder on this checkpoint's own chunks, as add cuts them "
                             "(CPU s per GiB, one thread; repeatable)")
    args = parser.parse_args(argv)
    REPEAT["runs"] = max(1, args.repeat)
    if args.file:
        print(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
              f"least CPU of {REPEAT['runs']} runs")
        found = []
        for path in args.file:
            row = file_row(path)
            found.append(row)
            chosen = ", ".join(f"{k} {v:.1%}" for k, v in row["chosen"].items())
            print(f"{path}: {row['chunks']} chunks (median {row['median_chunk'] >> 10} KiB), "
                  f"stored {row['ratio']:.4f} of raw; choose {row['choose_cpu_s_per_gib']:.3f} CPU s/GiB, "
                  f"decode {row['decode_cpu_s_per_gib']:.3f} CPU s/GiB; bytes chosen: {chosen}")
        if args.json:
            args.json.write_text(json.dumps({"files": found}, indent=1) + "\n")
        return 0
    notes: list[str] = []
    rows: list[Row] = []
    header = (f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}; "
              f"{args.mib} MiB per data set in {CHUNK // MIB} MiB chunks, seed {args.seed}; one thread; "
              f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(header, flush=True)
    for ds in datasets(args.mib, args.seed):
        changed = ds.changed
        if changed is not None:
            notes.append(f"{ds.name}: {changed:.1%} of values changed")
        rows += ours(ds) + ([] if args.no_peers else peers(ds, notes))
        print(f"... {ds.name} done", file=sys.stderr, flush=True)
    if args.markdown:
        print("\n| data | method | stored / raw | encode MB/s/core | decode MB/s/core | encode CPU s | decode CPU s "
              "| 2 threads: encode, decode MB/s (wall) | note |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for r in rows:
            print(f"| {r.data} | {r.method} | {r.ratio:.3f} ({1 / r.ratio:.2f}x) | {r.encode_mb_s:.0f} | "
                  f"{r.decode_mb_s:.0f} | {r.encode_cpu_s:.2f} | {r.decode_cpu_s:.2f} | {_two(r)} | {r.note} |")
    else:
        print(f"\n{'data':24} {'method':52} {'ratio':>7} {'enc MB/s':>9} {'dec MB/s':>9} {'enc s':>6} {'dec s':>6} "
              f"{'2 threads':>11}  note")
        for r in rows:
            print(f"{r.data:24} {r.method:52} {r.ratio:7.3f} {r.encode_mb_s:9.0f} {r.decode_mb_s:9.0f} "
                  f"{r.encode_cpu_s:6.2f} {r.decode_cpu_s:6.2f} {_two(r):>11}  {r.note}")
    for note in sorted(set(notes)):
        print(f"- {note}")
    print("\nPrimitives (one 4 MiB bf16 chunk, MB/s of raw bytes per core):")
    for line in primitives(args.seed):
        print(f"- {line}")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "notes": sorted(set(notes)),
                                         "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
