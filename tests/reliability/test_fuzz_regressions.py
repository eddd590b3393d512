"""Inputs the fuzz harnesses found that broke a parser, kept as plain examples (docs/reliability.md,
Defects found and fixed): each is now the parser's own error, or for checkpoints an opaque layout.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import blake3
import pytest
import zstandard

from gitmodel import audit, codecs, pointer
from gitmodel.chunking import detect_layout
from gitmodel.errors import DamagedObjectError, GitModelError
from gitmodel.manifest import Manifest
from reliability.fuzz_support import assert_clean

DEEP_JSON = "[" * 100_000
DEEP_TOML = b"version = 1\nname = " + b"[" * 100_000


def test_gitmodel_toml_that_is_not_utf8(tmp_path: Path) -> None:
    from gitmodel.config import load_config

    (tmp_path / ".gitmodel.toml").write_bytes(b"\x80 git-model settings\nversion = 1\n")
    err = assert_clean(".gitmodel.toml", lambda: load_config(SimpleNamespace(workdir=tmp_path)), b"")  # type: ignore[arg-type]
    assert "UTF-8" in str(err)


def test_gitmodel_toml_nested_too_deeply(tmp_path: Path) -> None:
    from gitmodel.config import load_config

    (tmp_path / ".gitmodel.toml").write_bytes(DEEP_TOML)
    err = assert_clean(".gitmodel.toml", lambda: load_config(SimpleNamespace(workdir=tmp_path)), b"")  # type: ignore[arg-type]
    assert err is not None


@pytest.mark.parametrize("url", ["s3://[bucket/prefix", "file://[::1/models", "http://[x"])
def test_remote_url_with_an_unclosed_bracket(tmp_path: Path, url: str) -> None:
    """urlparse raises ValueError ('Invalid IPv6 URL') on an unclosed '[' (GITMODEL_SEED=1834626565)."""
    from gitmodel.remote.config import check_url, load_remotes, open_remote

    data = f'version = 1\n\n[remotes.origin]\nurl = "{url}"\n'.encode()
    (tmp_path / ".gitmodel.toml").write_bytes(data)
    git: Any = SimpleNamespace(workdir=tmp_path)
    spec = load_remotes(git)["origin"]
    err = assert_clean(".gitmodel.toml", lambda: check_url(spec.url), data)
    assert err is not None and "not a URL" in str(err)
    err = assert_clean(".gitmodel.toml", lambda: open_remote(git, spec), data)
    assert err is not None and "not a URL" in str(err)


def test_pointer_nested_too_deeply() -> None:
    err = assert_clean("pointer.decode", lambda: pointer.decode(DEEP_TOML, "m.model.toml"), DEEP_TOML)
    assert err is not None
    assert pointer.top_level_name(DEEP_TOML) is None


def test_manifest_nested_too_deeply() -> None:
    err = assert_clean("manifest.decode", lambda: Manifest.decode(DEEP_JSON.encode(), "x"), DEEP_JSON)
    assert "damaged" in str(err)


def test_audit_event_nested_too_deeply() -> None:
    err = assert_clean("audit.decode", lambda: audit.decode(DEEP_JSON), DEEP_JSON)
    assert isinstance(err, audit.BadEventError)


def test_safetensors_header_with_a_huge_integer() -> None:
    """json refuses integers over 4300 digits with a ValueError that is not a JSONDecodeError."""
    header = b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 4]}}'
    data = struct.pack("<Q", len(header)) + header + bytes(4)
    layout = detect_layout(memoryview(data), "m.safetensors")
    assert layout.format == "opaque" and layout.warning is not None and "safetensors header is damaged" in layout.warning


@pytest.mark.parametrize("table", [
    {"metadata": {"types": {"a": [1]}}},
    {"metadata": {"types": {"a": {"b": 1}}}},
    {"metadata": {"bounds": ["metrics.a >= " + "9" * 5000]}},
    {"check": {"raw_size_threshold": "9" * 5000}},
])
def test_metadata_rules_of_the_wrong_kind(table: dict[str, Any]) -> None:
    from gitmodel.schema import ConfigError, parse_schema

    err = assert_clean(".gitmodel.toml", lambda: parse_schema(table), json.dumps(table)[:200])
    assert isinstance(err, ConfigError)


def test_index_cache_claiming_four_billion_packs(tmp_path: Path) -> None:
    """A resealed cache whose pack count points past its end: treated as no cache, not walked."""
    from gitmodel.store.index import _CACHE_HEAD, CACHE_MAGIC, RECORD_SIZE, PackIndex

    body = _CACHE_HEAD.pack(CACHE_MAGIC, 1, 2**32 - 1)
    start = _CACHE_HEAD.size + 32 * (2**32 - 1)
    body += bytes((start - len(body)) % RECORD_SIZE)  # so the record area's length divides evenly
    (tmp_path / "cache").write_bytes(body + blake3.blake3(body).digest())
    index = PackIndex(tmp_path)
    assert_clean("index cache", lambda: index.lookup(b"\0" * 16), b"")
    assert index.lookup(b"\0" * 16) is None and index.packs() == set()


def test_zstd_frame_without_its_size_does_not_size_the_output_by_the_claim() -> None:
    """A frame that does not state its content size, read for a chunk that claims 4 GiB."""
    payload = zstandard.ZstdCompressor(write_content_size=False).compress(b"abc" * 10)
    err = assert_clean("codec decode", lambda: codecs.decode(codecs.CODEC_ZSTD, payload, 2**32 - 1, "0" * 32), payload)
    assert isinstance(err, DamagedObjectError)
    # the same frame read for its true length still decodes (old writers' frames stay readable)
    import xxhash

    assert codecs.decode(codecs.CODEC_ZSTD, payload, 30, xxhash.xxh3_128_hexdigest(b"abc" * 10)) == b"abc" * 10


def test_errors_are_gitmodel_errors() -> None:
    """The harness's allowed type is the library's one base (a guard against a silent widening)."""
    assert issubclass(audit.BadEventError, GitModelError) and issubclass(DamagedObjectError, GitModelError)


@pytest.mark.parametrize("data", [b"", b"GMIX", b"GMIX\x01\x00\x00"])
def test_index_file_shorter_than_its_header(tmp_path: Path, data: bytes) -> None:
    """An index file cut short inside its 8-byte header: damaged (fsck rebuilds it), not an IndexError."""
    from gitmodel.store.index import PackIndex
    from gitmodel.store.pack import decode_index

    name = "0" * 64
    err = assert_clean("pack index (decode_index)", lambda: decode_index(data, name, "x.idx"), data)
    assert isinstance(err, DamagedObjectError)
    (tmp_path / f"{name}.idx").write_bytes(data)
    index = PackIndex(tmp_path)
    assert_clean("pack index (store read)", lambda: index.lookup(b"\0" * 16), data)
    assert name in index.damaged


def test_index_cache_record_naming_a_pack_past_its_list(tmp_path: Path) -> None:
    """A resealed cache whose record names pack number 7 of a list of 1: that record names nothing."""
    from gitmodel.store.index import _CACHE_HEAD, CACHE_MAGIC, RECORD, PackIndex

    body = _CACHE_HEAD.pack(CACHE_MAGIC, 1, 1) + bytes.fromhex("ab" * 32)
    body += RECORD.pack(b"\1" * 16, 7, 0, 10, 10, 0, 0, 0)
    (tmp_path / "cache").write_bytes(body + blake3.blake3(body).digest())
    (tmp_path / f"{'ab' * 32}.idx").write_bytes(b"")  # the one pack the cache lists is live
    index = PackIndex(tmp_path)
    assert_clean("index cache", lambda: index.lookup(b"\1" * 16), b"")
    assert_clean("index cache", lambda: list(index.entries()), b"")
    assert index.lookup(b"\1" * 16) is None and list(index.entries()) == []


@pytest.mark.parametrize(("offset", "length"), [(2**63, 100), (2**64 - 1, 1), (0, 2**32 - 1)])
def test_index_entry_past_the_end_of_its_pack(tmp_path: Path, offset: int, length: int) -> None:
    """An index entry (renamed for its table, as a tamperer would) placing a chunk at 2^63 or
    4 GiB long in a small pack: damaged, without an OverflowError or a 4 GiB read buffer."""
    import os

    import xxhash

    from gitmodel.store import ChunkStore
    from gitmodel.store.objects import ChunkId
    from gitmodel.store.pack import ENTRY, INDEX_HEADER, pack_name

    data = os.urandom(1000)
    cid = ChunkId(xxhash.xxh3_128_hexdigest(data))
    store = ChunkStore(tmp_path)
    store.put_chunk(cid, data)
    (idx,) = (tmp_path / "index").glob("*.idx")
    entry = list(ENTRY.unpack(idx.read_bytes()[len(INDEX_HEADER):]))
    entry[1], entry[2] = offset, length
    table = ENTRY.pack(*entry)
    name = pack_name(table)
    os.rename(tmp_path / "packs" / f"{idx.stem}.pack", tmp_path / "packs" / f"{name}.pack")
    idx.unlink()
    (tmp_path / "index" / f"{name}.idx").write_bytes(INDEX_HEADER + table)
    fresh = ChunkStore(tmp_path)
    err = assert_clean("pack index (store read)", lambda: fresh.get_chunk(cid), table)
    assert isinstance(err, DamagedObjectError)


def test_folder_remote_range_past_the_end(tmp_path: Path) -> None:
    """A remote index (tampered) asks a folder remote for bytes at 2^63, or 4 GiB of them: a short
    body (which fetch reports as a truncated pack), not an OverflowError or a 4 GiB buffer."""
    from gitmodel.remote.folder import FolderRemote

    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "p.pack").write_bytes(b"x" * 100)
    remote = FolderRemote(tmp_path, str(tmp_path))
    got: list[list[bytes]] = []
    ranges = [(2**63, 10), (2**64 - 1, 1), (0, 2**32 - 1), (50, 10)]
    assert_clean("folder remote ranges", lambda: got.append(remote.get_ranges("packs/p.pack", ranges)), b"")
    assert got == [[b"", b"", b"x" * 100, b"x" * 10]]


BIG_INT = "9" * 5000  # TOML parsers raise a plain ValueError for integers over 4300 digits


def test_pointer_holding_an_integer_of_5000_digits() -> None:
    data = f"version = 1\nname = {BIG_INT}\n".encode()
    err = assert_clean("pointer.decode", lambda: pointer.decode(data, "m.model.toml"), data)
    assert err is not None
    assert_clean("pointer.top_level_name", lambda: pointer.top_level_name(data), data, allowed=())


def test_gitmodel_toml_holding_an_integer_of_5000_digits(tmp_path: Path) -> None:
    from gitmodel.config import load_config
    from gitmodel.goals import load_goals

    (tmp_path / ".gitmodel.toml").write_text(f"version = 1\n9 = {BIG_INT}\n")
    git: Any = SimpleNamespace(workdir=tmp_path)
    assert_clean(".gitmodel.toml", lambda: load_config(git), b"")
    assert_clean(".gitmodel.toml", lambda: load_goals(git), b"")


def test_metadata_option_holding_an_integer_of_5000_digits() -> None:
    from gitmodel.metadata import parse_assignment

    for raw in (BIG_INT, "[" * 5000):
        got: list[tuple[str, Any]] = []
        assert_clean("--param", lambda: got.append(parse_assignment(f"x={raw}", "--param")), raw)
        assert got == [("x", raw)]  # kept as the string the user typed


def test_gitmodel_toml_keys_with_a_newline_give_one_line_errors(tmp_path: Path) -> None:
    from gitmodel.config import load_config  # noqa: F401 - the loaders below call it
    from gitmodel.remote.config import load_remotes
    from gitmodel.schema import load_schema

    git: Any = SimpleNamespace(workdir=tmp_path)
    (tmp_path / ".gitmodel.toml").write_text('version = 1\n[metadata]\n"a\\nb" = 1\n')
    assert_clean(".gitmodel.toml", lambda: load_schema(git), b"")  # assert_clean checks one line
    (tmp_path / ".gitmodel.toml").write_text('version = 1\n[remotes."a\\nb"]\nurl = 3\n')
    assert_clean(".gitmodel.toml", lambda: load_remotes(git), b"")
