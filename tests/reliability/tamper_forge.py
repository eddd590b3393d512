"""Forging store and remote packs for the tamper harness: a chunk id that names other bytes.

Every forged pack is well formed: its entries are framed by the real writer (gitmodel's
PackFile), its name is the BLAKE3 of its table and its index file matches, so the cheap
checks (magic, footer, index name, header against index entry) all pass; only the bytes
under one id are not the ones that id was made from. That is what an xxh3 collision, or an
attacker with write access to a remote, would give a reader.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import xxhash

from gitmodel.codecs import delta
from gitmodel.store import container
from gitmodel.store.pack import ENTRY_SIZE, FOOTER, PackFile, decode_table

if TYPE_CHECKING:
    from conftest import Repo
    from tests.remote.conftest import RemoteUnderTest


@dataclass(frozen=True)
class Forged:
    """What to store under one chunk id instead of its own bytes: a container's fields."""

    codec: int
    flags: int
    raw_len: int
    payload: bytes


def other_bytes(original: bytes) -> Forged:
    """The same length, a different content, stored raw: a well-formed chunk with the wrong bytes."""
    changed = bytearray(original)
    for at in range(0, len(changed), max(1, len(changed) // 7)):
        changed[at] ^= 0x5A
    assert bytes(changed) != original
    return Forged(container.CODEC_RAW, 0, len(original), bytes(changed))


def delta_on(base_id: str, base: bytes, xored: bytes, raw_len: int) -> Forged:
    """A delta entry naming `base_id` (of length len(base)) whose inner raw payload is `xored`."""
    payload = delta.header(base_id, len(base), container.CODEC_RAW) + xored
    return Forged(container.CODEC_XOR_DELTA, container.FLAG_BASE, raw_len, payload)


def _xor(x: bytes, y: bytes) -> bytes:
    return bytes(np.bitwise_xor(np.frombuffer(x, np.uint8), np.frombuffer(y, np.uint8)))


def forged_chains(raw: list[bytes], ids: list[str]) -> dict[str, Forged]:
    """For four equal-length chunks a, b, c, d (their bytes and ids): a and b name each other
    as delta bases (a chain that never ends); c is a delta against a's bytes that names d as
    its base (it decodes to other bytes)."""
    a, b, c, d = raw
    ia, ib, ic, id_ = ids
    return {
        ib: delta_on(ia, a, _xor(a, b), len(b)),
        ia: delta_on(ib, b, _xor(a, b), len(a)),
        ic: delta_on(id_, d, _xor(a, c), len(c)),
    }


def table_of(pack: bytes) -> list[tuple[bytes, int, int]]:
    """(chunk id, offset, length) of every entry of a pack, from its own trailer."""
    table_at, count, _ = FOOTER.unpack_from(pack, len(pack) - FOOTER.size)
    return [(e.chunk, e.offset, e.length) for e in decode_table(pack[table_at : table_at + count * ENTRY_SIZE], "pack")]


def forge_pack(pack: bytes, forged: dict[str, Forged], work: Path) -> tuple[str, bytes, bytes]:
    """A copy of `pack` with the `forged` entries in place of the real ones: (name, pack, index)."""
    tmp, packs, index = work / "tmp", work / "packs", work / "index"
    for d in (tmp, packs, index):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    writer = PackFile(tmp)
    for chunk, offset, length in table_of(pack):
        f = forged.get(chunk.hex())
        if f is None:
            head = pack[offset : offset + container.HEADER_SIZE]
            _, _, codec, flags, raw_len = container.HEADER.unpack(head)
            writer.add(chunk, codec, flags, raw_len, pack[offset + container.HEADER_SIZE : offset + length])
        else:
            writer.add(chunk, f.codec, f.flags, f.raw_len, f.payload)
    name, _ = writer.finish(packs, index)
    return name, (packs / f"{name}.pack").read_bytes(), (index / f"{name}.idx").read_bytes()


def forge_store(root: Path, forged: dict[str, Forged], work: Path) -> None:
    """Rewrite every pack of the store at `root` that holds a forged id (the index cache goes)."""
    wanted = {bytes.fromhex(c) for c in forged}
    done: set[bytes] = set()
    for path in sorted((root / "packs").glob("*.pack")):
        pack = path.read_bytes()
        held = {chunk for chunk, _, _ in table_of(pack)} & wanted
        if not held:
            continue
        name, new_pack, new_index = forge_pack(pack, forged, work)
        (root / "packs" / f"{name}.pack").write_bytes(new_pack)
        (root / "index" / f"{name}.idx").write_bytes(new_index)
        os.unlink(root / "index" / f"{path.stem}.idx")
        os.unlink(path)
        done |= held
    (root / "index" / "cache").unlink(missing_ok=True)
    assert done == wanted, "some forged ids are in no pack of the store"


def forge_remote(remote: RemoteUnderTest, forged: dict[str, Forged], work: Path) -> None:
    """The same on a remote: the new pack, then its index, then the old index and pack go."""
    wanted = {bytes.fromhex(c) for c in forged}
    done: set[bytes] = set()
    for key in sorted(remote.keys("packs/")):
        pack = remote.read(key)
        held = {chunk for chunk, _, _ in table_of(pack)} & wanted
        if not held:
            continue
        old = key.removeprefix("packs/").removesuffix(".pack")
        name, new_pack, new_index = forge_pack(pack, forged, work)
        remote.write(f"packs/{name}.pack", new_pack)
        remote.write(f"index/{name}.idx", new_index)
        remote.delete(f"index/{old}.idx")
        remote.delete(key)
        done |= held
    assert done == wanted, "some forged ids are in no pack of the remote"


def raw_chunk(root: Path, cid: str) -> bytes:
    """The true bytes of a chunk of the store at `root` (before forging)."""
    from gitmodel.store import ChunkStore

    store = ChunkStore(root)
    try:
        return store.get_chunk(cid)  # type: ignore[arg-type]
    finally:
        store.close()


# -- the versions the tamper tests forge -----------------------------------------------------
SHAPE = (128, 256)  # 128 KiB of float32: one chunk per tensor
NAMES = ("a.weight", "b.weight", "c.weight", "d.weight")


@dataclass
class TwoVersions:
    """m v1.0.0, then v1.1.0 with tensor b changed, added uncompressed (raw entries: forged
    payloads stay plain) and committed in `repo`; its working tree holds v1.1.0."""

    repo: Repo
    v1: dict[str, np.ndarray]
    v1_sha: str
    v1_commit: str
    v2_sha: str

    @classmethod
    def commit(cls, repo: Repo) -> TwoVersions:
        from conftest import make_safetensors, sha256  # not when this file runs as `git model`

        repo.git("config", "model.compression", "0")
        model = repo.path / "m.safetensors"
        v1 = make_safetensors(model, {n: SHAPE for n in NAMES}, seed=1)
        v1_sha = sha256(model)
        repo.gm("add", "-q", "m.safetensors")
        repo.commit("v1")
        repo.gm("tag", "m", "1.0.0", "-m", "first")
        v1_commit = repo.git("rev-parse", "HEAD").stdout.strip()
        changed = dict(v1)
        changed["b.weight"] = np.random.default_rng(7).standard_normal(SHAPE, dtype=np.float32)
        make_safetensors(model, changed)
        v2_sha = sha256(model)
        repo.gm("add", "-q", "m.safetensors")
        repo.commit("v2")
        repo.gm("tag", "m", "1.1.0", "-m", "second")
        return cls(repo, v1, v1_sha, v1_commit, v2_sha)

    def chunk(self, tensor: str) -> str:
        """The chunk id of one v1 tensor (the tensor is its own chunk)."""
        return xxhash.xxh3_128_hexdigest(self.v1[tensor].tobytes())

    def other_b(self) -> tuple[str, Forged]:
        """v1's tensor b's chunk id, and other bytes of its length to store under it."""
        return self.chunk("b.weight"), other_bytes(self.v1["b.weight"].tobytes())

    def chains(self) -> dict[str, Forged]:
        """forged_chains over v1's four tensors."""
        return forged_chains([self.v1[n].tobytes() for n in NAMES], [self.chunk(n) for n in NAMES])


def run_colliding(repo: Repo, forged_bytes: bytes, victim: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`git model ARGS` in `repo` with xxh3(forged_bytes) reading as `victim`: a collision."""
    env = {**repo.env, **collide_env(forged_bytes, victim)}
    return subprocess.run([sys.executable, __file__, *args], cwd=repo.path, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


# -- a simulated xxh3 collision ------------------------------------------------------------
# A real xxh3-128 collision cannot be made in a test, so `git model` runs with xxh3 wrapped:
# the digest of the forged bytes reads as the victim's id, exactly what a collision gives a
# reader, so every check below the file's BLAKE3 digest passes. COLLIDE="<forged id>:<victim id>".
COLLIDE = "GITMODEL_TEST_COLLIDE"


def collide_env(forged_bytes: bytes, victim: str) -> dict[str, str]:
    return {COLLIDE: f"{xxhash.xxh3_128_hexdigest(forged_bytes)}:{victim}"}


def run_colliding_cli() -> None:
    """`python tamper_forge.py ARGS...`: `git model ARGS...` with the collision of $COLLIDE."""
    import types

    import gitmodel.codecs as codecs

    forged, victim = os.environ[COLLIDE].split(":")
    real = xxhash

    def hexdigest(data: bytes | bytearray | memoryview) -> str:
        got = real.xxh3_128_hexdigest(data)
        return victim if got == forged else got

    codecs.xxhash = types.SimpleNamespace(xxh3_128_hexdigest=hexdigest)  # type: ignore[assignment]
    from gitmodel.cli import main

    main(sys.argv[1:])


if __name__ == "__main__":
    run_colliding_cli()
