"""Hypothesis: any bytes with any declared dtype round-trip exactly through every codec and the chooser."""

from __future__ import annotations

import numpy as np
from codec_values import cid
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from gitmodel import codecs
from gitmodel.codecs import delta
from gitmodel.codecs.planes import TRANSFORMS, PlaneLayout
from gitmodel.errors import DamagedObjectError, MissingObjectError, UnsupportedVersionError

DTYPE_NAMES = [
    "BF16", "F16", "F32", "F64", "C64", "I16", "U16", "I32", "U32", "I64", "U64", "I8", "U8", "BOOL",
    "F8_E4M3", "F8_E5M2", "Q4_0", "Q8_0", "ggml_type_99", "float32", "bfloat16", "<f2", "storage",
    "no such dtype", "",
]
dtypes = st.one_of(st.none(), st.sampled_from(DTYPE_NAMES), st.text(max_size=8))
layouts = st.builds(PlaneLayout, st.sampled_from([1, 2, 4, 8]), st.sampled_from(TRANSFORMS))
# Mostly small; sometimes past the chooser's sample threshold (4 x 128 KiB), built from a
# pattern so big inputs stay cheap to generate and still compress in parts.
blobs = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda seed, n, k: np.random.default_rng(seed).integers(0, k, n, dtype=np.uint8).tobytes(),
              st.integers(0, 2**32 - 1), st.integers(0, 600_000), st.sampled_from([1, 2, 16, 256])),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode(enc: codecs.Encoding, data: bytes, base: bytes | None = None) -> bytes:
    bases = {} if base is None else {cid(base): base}
    return bytes(codecs.decode(enc.codec, enc.payload, len(data), cid(data), load_base=bases.__getitem__))


@SETTINGS
@given(data=blobs, dtype=dtypes)
def test_any_bytes_with_any_dtype_round_trip_through_the_chooser(data: bytes, dtype: str | None) -> None:
    enc = codecs.choose(data, dtype)
    assert decode(enc, data) == data
    assert len(enc.payload) <= len(data)  # never larger than raw


@SETTINGS
@given(data=blobs, base=blobs, dtype=dtypes, depth=st.integers(0, codecs.MAX_CHAIN))
def test_any_bytes_and_any_base_round_trip_through_the_chooser(data: bytes, base: bytes, dtype: str | None,
                                                               depth: int) -> None:
    enc = codecs.choose(data, dtype, codecs.Base(cid(base), base, depth))
    assert decode(enc, data, base) == data
    if enc.codec == codecs.CODEC_XOR_DELTA:
        assert enc.base == cid(base) and enc.depth == depth + 1 <= codecs.MAX_CHAIN
    else:
        assert enc.base is None and enc.depth == 0


@SETTINGS
@given(data=st.binary(max_size=2000), base=st.binary(max_size=2000), layout=layouts,
       inner=st.sampled_from([codecs.CODEC_RAW, codecs.CODEC_ZSTD, codecs.CODEC_PLANES]))
def test_any_bytes_round_trip_through_every_codec(data: bytes, base: bytes, layout: PlaneLayout, inner: int) -> None:
    b = codecs.Base(cid(base), base)
    for enc in (
        codecs.encode_with(codecs.CODEC_RAW, data),
        codecs.encode_with(codecs.CODEC_ZSTD, data),
        codecs.encode_with(codecs.CODEC_PLANES, data, layout),
        codecs.encode_with(codecs.CODEC_XOR_DELTA, data, layout, b, inner),
    ):
        assert decode(enc, data, base) == data


float_arrays = st.one_of(
    *[hnp.arrays(kind, st.integers(0, 300), elements=st.floats(width=width, allow_subnormal=True))
      for kind, width in ((np.float16, 16), (np.float32, 32), (np.float64, 64))]
)


@SETTINGS
@given(values=float_arrays, odd=st.binary(max_size=7))
def test_any_floats_round_trip_bit_for_bit(values: np.ndarray, odd: bytes) -> None:
    name = {2: "F16", 4: "F32", 8: "F64"}[values.dtype.itemsize]
    data = values.tobytes() + odd  # NaN payloads, -0.0, subnormals; and a ragged end
    assert decode(codecs.choose(data, name), data) == data
    layout = codecs.layout_for(name)
    assert layout is not None
    assert decode(codecs.encode_with(codecs.CODEC_PLANES, data, layout), data) == data


@SETTINGS
@given(bits=hnp.arrays(np.uint16, st.integers(0, 400)))
def test_any_bf16_bit_patterns_round_trip(bits: np.ndarray) -> None:
    data = bits.tobytes()
    assert decode(codecs.choose(data, "BF16"), data) == data


@SETTINGS
@given(data=st.binary(max_size=500), base=st.binary(max_size=500))
def test_xor_undoes_itself_whatever_the_lengths(data: bytes, base: bytes) -> None:
    xored = delta.xor_with(data, base)
    assert len(xored) == len(data)
    assert delta.xor_with(xored, base) == data


@SETTINGS
@given(codec=st.integers(0, 255), payload=st.binary(max_size=300), raw_len=st.integers(0, 400))
def test_a_random_payload_is_an_error_or_the_right_bytes(codec: int, payload: bytes, raw_len: int) -> None:
    target = bytes(raw_len)  # whatever the payload, only these bytes may come out

    def load(chunk_id: str) -> bytes:
        raise MissingObjectError("chunk", chunk_id)

    try:
        out = codecs.decode(codec, payload, raw_len, cid(target), load_base=load)
    except (DamagedObjectError, UnsupportedVersionError, MissingObjectError):
        return
    assert bytes(out) == target


class DeltaChains(RuleBasedStateMachine):
    """Versions of tensors, each stored against its parent as the store will: chains stay bounded,
    every version decodes through its chain, and gc's view (base_of) names only stored chunks."""

    tensors = Bundle("tensors")

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, tuple[codecs.Encoding, int]] = {}
        self.latest: dict[int, tuple[bytes, int]] = {}  # tensor -> (bytes, depth of its chunk)
        self.all_versions: list[bytes] = []
        self.next_tensor = 0

    def _store(self, tensor: int, data: bytes, parent: tuple[bytes, int] | None) -> None:
        key = cid(data)
        if key in self.stored:  # content addressing: an identical chunk is stored once
            enc, _ = self.stored[key]
        else:
            base = None if parent is None else codecs.Base(cid(parent[0]), parent[0], parent[1])
            enc = codecs.choose(data, "BF16", base)
            self.stored[key] = (enc, len(data))
        self.latest[tensor] = (data, enc.depth)
        self.all_versions.append(data)

    def _load(self, chunk_id: str) -> bytes:
        enc, n = self.stored[chunk_id]
        return bytes(codecs.decode(enc.codec, enc.payload, n, chunk_id, self._load))

    @rule(target=tensors, seed=st.integers(0, 2**16), count=st.integers(0, 3000))
    def new_tensor(self, seed: int, count: int) -> int:
        tensor = self.next_tensor
        self.next_tensor += 1
        weights = np.random.default_rng(seed).normal(0, 0.02, count).astype(np.float32)
        from codec_values import bf16_bits

        self._store(tensor, bf16_bits(weights).tobytes(), None)
        return tensor

    @rule(tensor=tensors, seed=st.integers(0, 2**16), share=st.sampled_from([0.0, 0.05, 0.25, 0.9, 1.0]),
          grow=st.integers(-300, 300))
    def train_step(self, tensor: int, seed: int, share: float, grow: int) -> None:
        parent = self.latest[tensor]
        rng = np.random.default_rng(seed)
        bits = np.frombuffer(parent[0][: len(parent[0]) // 2 * 2], dtype=np.uint16).copy()
        moved = rng.random(bits.size) < share
        bits[moved] ^= rng.integers(1, 8, int(moved.sum()), dtype=np.uint16)  # low mantissa bits
        data = bits.tobytes()
        if grow > 0:
            data += rng.integers(0, 256, grow, dtype=np.uint8).tobytes()
        elif grow < 0:
            data = data[: max(0, len(data) + grow)]
        self._store(tensor, data, parent)

    @invariant()
    def chains_are_bounded_and_bases_are_stored(self) -> None:
        for enc, _ in self.stored.values():
            assert 0 <= enc.depth <= codecs.MAX_CHAIN
            base = codecs.base_of(enc.codec, enc.payload)
            assert base == enc.base
            if base is not None:
                assert base in self.stored
                assert self.stored[base][0].depth == enc.depth - 1

    @invariant()
    def every_version_decodes(self) -> None:
        for data in self.all_versions[-5:]:
            assert self._load(cid(data)) == data


TestDeltaChains = DeltaChains.TestCase
TestDeltaChains.settings = settings(max_examples=25, stateful_step_count=15, deadline=None,
                                    suppress_health_check=[HealthCheck.too_slow])
