"""Deterministic, streaming generator of transformer-like bf16 safetensors checkpoint series."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

import numpy as np

MIB = 1 << 20
DTYPE = "BF16"
ITEMSIZE = 2
# Elements generated per step: 16 MiB of float32 scratch plus 8 MiB of bf16 output.
# Fixed (not configurable) so the bytes of a tensor never depend on a tunable.
CHUNK_ELEMS = 4 * MIB
DEFAULT_LAYERS = 100
CHANGED_LAYERS_PER_VERSION = 2
# Share of the elements spent on transformer layers; the rest is the embedding.
LAYER_SHARE = 0.96
MLP_RATIO = 4
METADATA = {"format": "pt"}
# Generation tag of the tensor that only the insert variant has.
INSERTED_GENERATION = 1 << 31


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a checkpoint: name, shape and the layer it belongs to (None if none)."""

    name: str
    shape: tuple[int, ...]
    layer: int | None = None
    inserted: bool = False

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * ITEMSIZE


@dataclass(frozen=True)
class InsertVariant:
    """Result of writing a checkpoint with one extra tensor in the middle of the file."""

    path: Path
    base_version: int
    tensor: TensorSpec
    data_offset: int
    header_bytes: int

    @property
    def inserted_bytes(self) -> int:
        return self.tensor.nbytes


@dataclass(frozen=True)
class SeriesSpec:
    """Shape of a checkpoint series; every byte of every version is a function of these fields."""

    seed: int
    versions: int
    n_layers: int
    hidden: int
    vocab: int
    changed: tuple[tuple[int, ...], ...]  # layers rewritten by versions 1..versions-1

    def __post_init__(self) -> None:
        if len(self.changed) != self.versions - 1:
            raise ValueError("need one tuple of changed layers per fine-tune version")

    def tensors(self, extra: Sequence[TensorSpec] = ()) -> list[TensorSpec]:
        """Tensors in file order, which is the safetensors order: by dtype (all BF16), then name."""
        d = self.hidden
        specs = [
            TensorSpec("model.embed_tokens.weight", (self.vocab, d)),
            TensorSpec("model.norm.weight", (d,)),
        ]
        for i in range(self.n_layers):
            p = f"model.layers.{i}."
            specs += [
                TensorSpec(p + "input_layernorm.weight", (d,), i),
                TensorSpec(p + "post_attention_layernorm.weight", (d,), i),
                TensorSpec(p + "self_attn.q_proj.weight", (d, d), i),
                TensorSpec(p + "self_attn.k_proj.weight", (d, d), i),
                TensorSpec(p + "self_attn.v_proj.weight", (d, d), i),
                TensorSpec(p + "self_attn.o_proj.weight", (d, d), i),
                TensorSpec(p + "mlp.up_proj.weight", (MLP_RATIO * d, d), i),
                TensorSpec(p + "mlp.down_proj.weight", (d, MLP_RATIO * d), i),
            ]
        specs += list(extra)
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError("duplicate tensor name")
        return sorted(specs, key=lambda s: s.name)

    def changed_layers(self, version: int) -> tuple[int, ...]:
        """Layers whose tensors get new values in `version` (empty for the base, version 0)."""
        self._check_version(version)
        if version == 0:
            return ()
        return self.changed[version - 1]

    def generation(self, tensor: TensorSpec, version: int) -> int:
        """Last version <= `version` that rewrote this tensor (0 if never)."""
        if tensor.inserted:
            return INSERTED_GENERATION
        if tensor.layer is None:
            return 0
        for v in range(version, 0, -1):
            if tensor.layer in self.changed_layers(v):
                return v
        return 0

    def changed_tensors(self, version: int) -> list[TensorSpec]:
        """Tensors whose bytes differ between `version - 1` and `version`."""
        layers = set(self.changed_layers(version))
        return [t for t in self.tensors() if t.layer is not None and t.layer in layers]

    def changed_bytes(self, version: int) -> int:
        """Tensor-data bytes that differ from the previous version (header is identical)."""
        return sum(t.nbytes for t in self.changed_tensors(version))

    def file_size(self, extra: Sequence[TensorSpec] = ()) -> int:
        header = build_header(self.tensors(extra))
        return 8 + len(header) + sum(t.nbytes for t in self.tensors(extra))

    def middle_insert_tensor(self) -> TensorSpec:
        """A new (hidden x hidden) tensor whose name sorts into the middle of the data section."""
        specs = self.tensors()
        total = sum(t.nbytes for t in specs)
        offset = 0
        for t in specs:
            if offset + t.nbytes >= total // 2 and t.layer is not None:
                # Sorts inside that layer's contiguous block, just before its mlp.down_proj.
                name = f"model.layers.{t.layer}.mlp.adapter.weight"
                return TensorSpec(name, (self.hidden, self.hidden), t.layer, inserted=True)
            offset += t.nbytes
        raise AssertionError("no layer tensor found")

    def _check_version(self, version: int) -> None:
        if not 0 <= version < self.versions:
            raise ValueError(f"version {version} not in 0..{self.versions - 1}")


def make_series(
    size_mib: float = 1024,
    versions: int = 5,
    seed: int = 0,
    n_layers: int = DEFAULT_LAYERS,
) -> SeriesSpec:
    """Pick hidden size and vocab so one checkpoint is about `size_mib` MiB with `n_layers` layers.

    With ~100 layers each holding ~0.96% of the bytes, a fine-tune that rewrites 2 layers
    changes ~1.9% of the file.
    """
    if versions < 1:
        raise ValueError("versions must be >= 1")
    if n_layers < CHANGED_LAYERS_PER_VERSION:
        raise ValueError(f"need at least {CHANGED_LAYERS_PER_VERSION} layers")
    elems = int(size_mib * MIB) // ITEMSIZE
    per_layer_coeff = 4 + 2 * MLP_RATIO  # q,k,v,o + up,down, in units of hidden^2
    hidden = int(math.sqrt(LAYER_SHARE * elems / (per_layer_coeff * n_layers))) // 8 * 8
    hidden = max(hidden, 8)
    layer_elems = per_layer_coeff * hidden * hidden + 2 * hidden
    vocab = max((elems - n_layers * layer_elems - hidden) // hidden, 8)
    rnd = random.Random(f"git-model-bench:{seed}")
    changed = tuple(
        tuple(sorted(rnd.sample(range(n_layers), CHANGED_LAYERS_PER_VERSION)))
        for _ in range(versions - 1)
    )
    return SeriesSpec(seed, versions, n_layers, hidden, vocab, changed)


def build_header(tensors: Sequence[TensorSpec], metadata: dict[str, str] | None = None) -> bytes:
    """Safetensors JSON header for tensors already in file order, space-padded to 8 bytes."""
    header: dict[str, object] = {}
    meta = METADATA if metadata is None else metadata
    if meta:
        header["__metadata__"] = dict(meta)
    offset = 0
    for t in tensors:
        header[t.name] = {"dtype": DTYPE, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)


def _tensor_seed(seed: int, tensor: TensorSpec, generation: int) -> list[int]:
    name_hash = int.from_bytes(hashlib.blake2b(tensor.name.encode(), digest_size=8).digest(), "little")
    return [seed, generation, name_hash]


def write_tensor_data(out: BinaryIO, seed: int, tensor: TensorSpec, generation: int) -> None:
    """Stream normal(0, 0.02) float32 values truncated to bf16 (upper 16 bits) into `out`."""
    rng = np.random.default_rng(_tensor_seed(seed, tensor, generation))
    n = tensor.numel
    step = min(n, CHUNK_ELEMS)
    f32 = np.empty(step, dtype=np.float32)
    bf16 = np.empty(step, dtype="<u2")
    done = 0
    while done < n:
        k = min(step, n - done)
        buf = f32[:k]
        rng.standard_normal(out=buf, dtype=np.float32)
        buf *= np.float32(0.02)
        bits = buf.view(np.uint32)
        bits >>= 16
        np.copyto(bf16[:k], bits, casting="unsafe")
        out.write(bf16[:k].data)
        done += k


def write_checkpoint(
    spec: SeriesSpec, version: int, path: str | Path, extra: Sequence[TensorSpec] = ()
) -> int:
    """Write version `version` of the series (plus `extra` tensors) to `path`; returns its size."""
    spec._check_version(version)
    path = Path(path)
    tensors = spec.tensors(extra)
    header = build_header(tensors)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for t in tensors:
            write_tensor_data(f, spec.seed, t, spec.generation(t, version))
        size = f.tell()
    tmp.replace(path)
    return size


def derive_checkpoint(spec: SeriesSpec, version: int, parent: str | Path, path: str | Path) -> int:
    """Write `version` by copying the file of `version - 1` and rewriting only its changed tensors.

    Produces the same bytes as write_checkpoint (the offsets of a fine-tune never move),
    in roughly the time of a file copy instead of regenerating every tensor.
    """
    spec._check_version(version)
    if version == 0:
        raise ValueError("version 0 has no parent")
    path = Path(path)
    tensors = spec.tensors()
    data_start = 8 + len(build_header(tensors))
    offsets: dict[str, int] = {}
    offset = data_start
    for t in tensors:
        offsets[t.name] = offset
        offset += t.nbytes
    tmp = path.with_name(path.name + ".tmp")
    shutil.copyfile(parent, tmp)
    with open(tmp, "r+b") as f:
        if f.seek(0, 2) != offset:
            raise ValueError(f"{parent} is not version {version - 1} of this series")
        for t in spec.changed_tensors(version):
            f.seek(offsets[t.name])
            write_tensor_data(f, spec.seed, t, spec.generation(t, version))
        size = f.seek(0, 2)
    tmp.replace(path)
    return size


def write_series(spec: SeriesSpec, outdir: str | Path, stem: str = "v") -> list[Path]:
    """Write every version as `outdir/{stem}{i}.safetensors`."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for v in range(spec.versions):
        p = outdir / f"{stem}{v}.safetensors"
        if v == 0:
            write_checkpoint(spec, v, p)
        else:
            derive_checkpoint(spec, v, paths[-1], p)
        paths.append(p)
    return paths


def _copy_range(src: BinaryIO, dst: BinaryIO, n: int) -> None:
    while n:
        buf = src.read(min(n, 8 * MIB))
        if not buf:
            raise ValueError("source file is shorter than expected")
        dst.write(buf)
        n -= len(buf)


def write_insert_variant(
    spec: SeriesSpec, version: int, path: str | Path, parent: str | Path | None = None
) -> InsertVariant:
    """Version `version` plus one new tensor in the middle of both header and data order.

    Everything after the insertion point moves, so only content-defined or tensor-aware
    dedup keeps the store growth near `inserted_bytes` (+ the rewritten header).
    With `parent` (the file of `version`), the unchanged bytes are copied from it.
    """
    spec._check_version(version)
    extra = spec.middle_insert_tensor()
    tensors = spec.tensors([extra])
    header = build_header(tensors)
    before = 0
    for t in tensors:
        if t.name == extra.name:
            break
        before += t.nbytes
    result = InsertVariant(Path(path), version, extra, 8 + len(header) + before, 8 + len(header))
    if parent is None:
        write_checkpoint(spec, version, path, [extra])
        return result
    old_start = 8 + len(build_header(spec.tensors()))
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    with open(parent, "rb") as src, open(tmp, "wb") as dst:
        if src.seek(0, 2) != spec.file_size():
            raise ValueError(f"{parent} is not a checkpoint of this series")
        dst.write(struct.pack("<Q", len(header)))
        dst.write(header)
        src.seek(old_start)
        _copy_range(src, dst, before)
        write_tensor_data(dst, spec.seed, extra, spec.generation(extra, version))
        _copy_range(src, dst, spec.file_size() - old_start - before)
    tmp.replace(path)
    return result


def read_header(path: str | Path) -> tuple[int, dict[str, Any]]:
    """Parse a safetensors header ourselves: (byte offset of the data section, header dict)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return 8 + n, json.loads(f.read(n))


def check_readable(path: str | Path, spec: SeriesSpec | None = None, extra: Sequence[TensorSpec] = ()) -> None:
    """Assert that the safetensors package opens the file and sees the expected tensors."""
    from safetensors import safe_open

    expected = {t.name: t for t in spec.tensors(extra)} if spec is not None else None
    with safe_open(str(path), framework="numpy") as f:
        keys = list(f.keys())
        if f.metadata() != METADATA:
            raise AssertionError(f"{path}: metadata {f.metadata()!r}")
        for name in keys:
            sl = f.get_slice(name)
            if sl.get_dtype() != DTYPE:
                raise AssertionError(f"{path}: {name} has dtype {sl.get_dtype()}")
            if expected is not None and tuple(sl.get_shape()) != expected[name].shape:
                raise AssertionError(f"{path}: {name} shape {sl.get_shape()}")
    if expected is not None and sorted(keys) != sorted(expected):
        raise AssertionError(f"{path}: tensor names differ from the spec")
    if spec is not None and Path(path).stat().st_size != spec.file_size(extra):
        raise AssertionError(f"{path}: unexpected file size")


def _tensor_ranges(path: str | Path) -> dict[str, tuple[int, int]]:
    start, header = read_header(path)
    ranges = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        ranges[name] = (start + a, start + b)
    return ranges


def _ranges_equal(fa: BinaryIO, fb: BinaryIO, ra: tuple[int, int], rb: tuple[int, int]) -> bool:
    if ra[1] - ra[0] != rb[1] - rb[0]:
        return False
    fa.seek(ra[0])
    fb.seek(rb[0])
    left = ra[1] - ra[0]
    while left:
        k = min(left, 8 * MIB)
        if fa.read(k) != fb.read(k):
            return False
        left -= k
    return True


def differing_tensors(a: str | Path, b: str | Path) -> set[str]:
    """Names of tensors present in both files whose bytes differ, plus those in only one."""
    ra, rb = _tensor_ranges(a), _tensor_ranges(b)
    diff = set(ra) ^ set(rb)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for name in set(ra) & set(rb):
            if not _ranges_equal(fa, fb, ra[name], rb[name]):
                diff.add(name)
    return diff


def check_series(spec: SeriesSpec, paths: Sequence[Path]) -> None:
    """Check readability, and that each fine-tune differs from its parent in exactly its 2 layers."""
    for v, p in enumerate(paths):
        check_readable(p, spec)
        if v == 0:
            continue
        got = differing_tensors(paths[v - 1], p)
        want = {t.name for t in spec.changed_tensors(v)}
        if got != want:
            raise AssertionError(f"v{v}: differing tensors {sorted(got - want)} / missing {sorted(want - got)}")
        _, h0 = read_header(paths[v - 1])
        _, h1 = read_header(p)
        if h0 != h1:
            raise AssertionError(f"v{v}: header differs from v{v - 1}")


def describe(spec: SeriesSpec) -> dict[str, Any]:
    """Plain-data summary of the series (used for --json and by the benchmark report)."""
    size = spec.file_size()
    return {
        "seed": spec.seed,
        "versions": spec.versions,
        "layers": spec.n_layers,
        "hidden": spec.hidden,
        "vocab": spec.vocab,
        "tensors": len(spec.tensors()),
        "file_bytes": size,
        "per_version": [
            {
                "version": v,
                "changed_layers": list(spec.changed_layers(v)),
                "changed_bytes": spec.changed_bytes(v) if v else size,
                "changed_fraction": (spec.changed_bytes(v) / size) if v else 1.0,
            }
            for v in range(spec.versions)
        ],
    }


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("outdir", type=Path, help="directory to write v0.safetensors, v1.safetensors, ...")
    ap.add_argument("--size-mib", type=float, default=1024, help="approximate size of one checkpoint (default 1024)")
    ap.add_argument("--versions", type=int, default=5, help="base + fine-tunes (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=DEFAULT_LAYERS)
    ap.add_argument("--insert-variant", action="store_true", help="also write insert.safetensors (last version + a tensor in the middle)")
    ap.add_argument("--check", action="store_true", help="verify with safetensors.safe_open and compare versions tensor by tensor")
    ap.add_argument("--json", action="store_true", help="print the series summary as JSON")
    args = ap.parse_args(list(argv) if argv is not None else None)

    spec = make_series(args.size_mib, args.versions, args.seed, args.layers)
    paths = write_series(spec, args.outdir)
    summary = describe(spec)
    summary["files"] = [str(p) for p in paths]
    if args.insert_variant:
        iv = write_insert_variant(spec, spec.versions - 1, args.outdir / "insert.safetensors", paths[-1])
        summary["insert_variant"] = {
            "path": str(iv.path),
            "base_version": iv.base_version,
            "tensor": iv.tensor.name,
            "inserted_bytes": iv.inserted_bytes,
            "data_offset": iv.data_offset,
        }
    if args.check:
        check_series(spec, paths)
        if args.insert_variant:
            check_readable(iv.path, spec, [iv.tensor])
            got = differing_tensors(paths[-1], iv.path)
            if got != {iv.tensor.name}:
                raise AssertionError(f"insert variant differs in {sorted(got)}")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{spec.versions} checkpoints of {summary['file_bytes']} bytes: {spec.n_layers} layers, "
            f"hidden {spec.hidden}, vocab {spec.vocab}, {summary['tensors']} tensors"
        )
        for row in summary["per_version"]:
            what = "base" if row["version"] == 0 else f"layers {row['changed_layers']} rewritten"
            print(f"  {paths[row['version']]}: {what}, {row['changed_bytes']} bytes new ({row['changed_fraction']:.2%})")
        if args.insert_variant:
            iv_info = summary["insert_variant"]
            print(f"  {iv_info['path']}: v{iv_info['base_version']} + {iv_info['tensor']} ({iv_info['inserted_bytes']} bytes at offset {iv_info['data_offset']})")
        if args.check:
            print("check: OK (safetensors reads every file; versions differ only in their rewritten layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
