"""The store contract (put, get, has, missing, iterate, delete), run on the pack store and on the v1 loose store."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Union

import numpy as np
import pytest
import xxhash
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gitmodel.errors import MissingObjectError
from gitmodel.store import ChunkId, ChunkStore
from gitmodel.store.loose import LooseStore

AnyStore = Union[ChunkStore, LooseStore]
# Small packs, so a handful of chunks spans several packs and delete must rewrite some.
KINDS: dict[str, Callable[[Path], AnyStore]] = {
    "pack": lambda root: ChunkStore(root, pack_target=64 << 10),
    "v1-loose": lambda root: LooseStore(root),
}


def cid_of(data: bytes) -> ChunkId:
    return ChunkId(xxhash.xxh3_128_hexdigest(data))


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AnyStore]:
    """A factory of store objects on one directory: a second call is the store reopened."""
    return lambda: KINDS[request.param](tmp_path / "store")


RANDOM = np.random.default_rng(1).bytes(300_000)
ZEROS = bytes(100_000)
SAMPLES = [RANDOM[:50_000], RANDOM[50_000:], ZEROS, b"", b"x" * 70, b"\x00\x01" * 1000]


def test_put_then_get_has_and_iterate(make: Callable[[], AnyStore]) -> None:
    store = make()
    ids = [cid_of(d) for d in SAMPLES]
    for cid, data in zip(ids, SAMPLES):
        assert store.put_chunk(cid, data) > 0
    for cid, data in zip(ids, SAMPLES):
        assert store.has_chunk(cid)
        assert store.get_chunk(cid) == data
    assert set(store.chunk_ids()) == set(ids)
    reopened = make()
    assert set(reopened.chunk_ids()) == set(ids)
    assert [reopened.get_chunk(c) for c in ids] == SAMPLES


def test_put_of_a_present_chunk_writes_nothing(make: Callable[[], AnyStore]) -> None:
    store = make()
    cid = cid_of(RANDOM)
    first = store.put_chunk(cid, RANDOM)
    assert first >= len(RANDOM)
    assert store.put_chunk(cid, RANDOM) == 0
    assert make().put_chunk(cid, RANDOM) == 0
    assert set(store.chunk_ids()) == {cid}


def test_missing_names_exactly_the_absent_ids_in_order(make: Callable[[], AnyStore]) -> None:
    store = make()
    present = [cid_of(d) for d in SAMPLES[:3]]
    for cid, data in zip(present, SAMPLES):
        store.put_chunk(cid, data)
    absent = [cid_of(b"absent %d" % i) for i in range(3)]
    asked = [absent[0], present[0], absent[1], present[2], absent[2]]
    assert store.missing(asked) == absent
    assert store.missing([]) == []


def test_get_of_an_absent_chunk(make: Callable[[], AnyStore]) -> None:
    store = make()
    cid = cid_of(b"never stored")
    assert not store.has_chunk(cid)
    with pytest.raises(MissingObjectError) as exc:
        store.get_chunk(cid)
    assert (exc.value.kind, exc.value.object_id) == ("chunk", cid)
    assert str(exc.value) == f"chunk {cid} is not in the store"


def test_delete_removes_only_what_it_names(make: Callable[[], AnyStore]) -> None:
    store = make()
    ids = [cid_of(d) for d in SAMPLES]
    for cid, data in zip(ids, SAMPLES):
        store.put_chunk(cid, data)
    gone = {ids[0], ids[2], cid_of(b"never stored")}
    store.delete_chunks(sorted(gone))
    for cid, data in zip(ids, SAMPLES):
        if cid in gone:
            assert not store.has_chunk(cid)
            with pytest.raises(MissingObjectError):
                store.get_chunk(cid)
        else:
            assert store.get_chunk(cid) == data
    assert set(store.chunk_ids()) == set(ids) - gone
    assert set(make().chunk_ids()) == set(ids) - gone
    # and a deleted chunk can be stored again
    assert store.put_chunk(ids[0], SAMPLES[0]) > 0
    assert make().get_chunk(ids[0]) == SAMPLES[0]


def test_concurrent_puts_of_one_chunk(make: Callable[[], AnyStore]) -> None:
    store = make()
    cid = cid_of(RANDOM)
    threads = [threading.Thread(target=store.put_chunk, args=(cid, RANDOM)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert make().get_chunk(cid) == RANDOM
    assert set(make().chunk_ids()) == {cid}
    assert list(store.tmp_dir.iterdir()) == []


# -- random sequences against a model: a dict of what must be there ------------------------
BLOBS = [RANDOM[i * 9000 : i * 9000 + 9000 + i * 1000] for i in range(12)] + [ZEROS[: 5000 * (i + 1)] for i in range(4)]


class ContractMachine(RuleBasedStateMachine):
    """put, delete, reopen in any order; get/has/missing/iterate always agree with the model."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self._tmp = tempfile.TemporaryDirectory()
        self.kind = "pack"
        self.store: AnyStore = KINDS[self.kind](Path(self._tmp.name) / "store")
        self.model: dict[ChunkId, bytes] = {}

    @rule(i=st.integers(0, len(BLOBS) - 1))
    def put(self, i: int) -> None:
        data = BLOBS[i]
        cid = cid_of(data)
        written = self.store.put_chunk(cid, data)
        assert (written == 0) == (cid in self.model)
        self.model[cid] = data

    @precondition(lambda self: bool(self.model))
    @rule(picks=st.lists(st.integers(0, len(BLOBS) - 1), min_size=1, max_size=4))
    def delete(self, picks: list[int]) -> None:
        ids = {cid_of(BLOBS[i]) for i in picks}
        self.store.delete_chunks(sorted(ids))
        for cid in ids:
            self.model.pop(cid, None)

    @rule()
    def reopen(self) -> None:
        if isinstance(self.store, ChunkStore):
            self.store.close()
        self.store = KINDS[self.kind](self.store.root)

    @rule(kind=st.sampled_from(sorted(KINDS)))
    def switch_kind(self, kind: str) -> None:
        """The pack store must keep reading what a v1 store holds, at any point."""
        if kind == "v1-loose" and self.kind == "pack":
            return  # a v1 release cannot read packs; only the other way round is promised
        self.kind = kind
        self.reopen()

    @invariant()
    def agrees(self) -> None:
        all_ids = [cid_of(d) for d in BLOBS]
        assert set(self.store.chunk_ids()) == set(self.model)
        assert self.store.missing(all_ids) == [c for c in all_ids if c not in self.model]
        for cid, data in self.model.items():
            assert self.store.has_chunk(cid)
            assert self.store.get_chunk(cid) == data

    def teardown(self) -> None:
        if isinstance(self.store, ChunkStore):
            self.store.close()
        self._tmp.cleanup()


class V1ThenPackMachine(ContractMachine):
    """Starts as a v1 loose store (as release 0.1.0 wrote it), then may switch to the pack store."""

    def __init__(self) -> None:
        super().__init__()
        self.kind = "v1-loose"
        self.store = KINDS[self.kind](self.store.root)


_settings = settings(max_examples=25, stateful_step_count=12, deadline=None, suppress_health_check=list(HealthCheck))
TestContractMachine = ContractMachine.TestCase
TestContractMachine.settings = _settings
TestV1ThenPackMachine = V1ThenPackMachine.TestCase
TestV1ThenPackMachine.settings = _settings
