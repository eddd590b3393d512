"""ChunkHints: each chunk's dtype, and the parent's chunk at the same place in the same tensor."""

from __future__ import annotations

from gitmodel.chunk_hints import ChunkHints
from gitmodel.chunking import Tensor
from gitmodel.manifest import Manifest, TensorEntry
from gitmodel.store import ChunkId

MIB = 1 << 20


def entry(name: str, dtype: str, offset: int, length: int) -> TensorEntry:
    return TensorEntry(name, dtype, (length // 2,), offset, length, "xxh3:" + "0" * 32)


def test_pieces_of_a_tensor_find_the_parent_pieces_even_when_the_tensor_moved() -> None:
    # parent: header (100 B), embed (10 MiB: pieces of 4, 4, 2 MiB), norm (64 B)
    parent = Manifest(
        100 + 10 * MIB + 64, "blake3:" + "0" * 64, "safetensors",
        ((ChunkId("h" * 32), 100), (ChunkId("a" * 32), 4 * MIB), (ChunkId("b" * 32), 4 * MIB),
         (ChunkId("c" * 32), 2 * MIB), (ChunkId("n" * 32), 64)),
        (entry("embed", "BF16", 100, 10 * MIB), entry("norm", "F32", 100 + 10 * MIB, 64)),
    )
    # the new version has a longer header and a grown embedding: offsets moved by 20 bytes
    hints = ChunkHints(
        [Tensor("embed", "BF16", (6 * MIB,), 120, 12 * MIB), Tensor("norm", "F32", (16,), 120 + 12 * MIB, 64)],
        parent,
    )
    assert hints.at(0, 120) == (None, "h" * 32)  # the header group: by file offset
    assert hints.at(120, 4 * MIB) == ("BF16", "a" * 32)
    assert hints.at(120 + 4 * MIB, 4 * MIB) == ("BF16", "b" * 32)
    assert hints.at(120 + 8 * MIB, 4 * MIB) == ("BF16", "c" * 32)  # longer than its base: still offered
    assert hints.at(120 + 12 * MIB, 64) == ("F32", "n" * 32)


def test_a_new_tensor_has_no_base_and_a_mixed_group_no_dtype() -> None:
    parent = Manifest(
        300, "blake3:" + "0" * 64, "safetensors", ((ChunkId("g" * 32), 300),),
        (entry("a", "F16", 100, 100), entry("b", "F16", 200, 100)),
    )
    hints = ChunkHints(
        [Tensor("a", "F16", (50,), 100, 100), Tensor("new", "BF16", (50,), 200, 100), Tensor("b", "F16", (50,), 300, 100)],
        parent,
    )
    assert hints.at(0, 400) == (None, "g" * 32)  # header + F16 + BF16: no one dtype
    assert hints.at(100, 200) == (None, None)  # starts inside 'a' at 0: the parent had no chunk starting there
    assert hints.at(200, 100) == ("BF16", None)
    assert hints.at(300, 100) == ("F16", None)
    assert ChunkHints([Tensor("a", "F16", (50,), 100, 100)]).at(100, 100) == ("F16", None)
