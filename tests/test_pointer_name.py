"""`add` looks at other pointers' names cheaply, without changing which names count as taken."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SMALL_TENSORS, Repo, make_safetensors
from gitmodel import pointer as ptr
from gitmodel.errors import GitModelError

DIGEST = "blake3:" + "ab" * 32
MANIFEST = "blake3:" + "cd" * 32


def _pointer(name: str, metadata: dict[str, object]) -> bytes:
    tensors = {"w": ptr.TensorSummary("F32", (2, 3), "xxh3:" + "0" * 32)}
    entry = ptr.FileEntry("m.safetensors", 10, DIGEST, MANIFEST, "safetensors", None, tensors)
    return ptr.Pointer(name, "file", (entry,), metadata).encode()


def _agrees_with_decode(data: bytes, where: str) -> None:
    """The property `add` relies on: a name read from the head is the name decode gives, or decode fails."""
    quick = ptr.top_level_name(data)
    try:
        full: str | None = ptr.decode(data, where).name
    except GitModelError:
        full = None
    if quick is not None and full is not None:
        assert quick == full
    # quick None (the head cannot be read alone: a '[' line inside a value) only costs a decode


@settings(max_examples=60, deadline=None)
@given(
    name=st.from_regex(ptr.NAME_RE, fullmatch=True),
    metadata=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20) | st.integers(), max_size=3),
)
def test_the_head_of_a_written_pointer_gives_its_name(name: str, metadata: dict[str, object]) -> None:
    data = _pointer(name, metadata)
    assert ptr.top_level_name(data) == name
    _agrees_with_decode(data, "m.safetensors.model.toml")


@pytest.mark.parametrize("text", [
    # hand edits a user might make: comments, other spacing, a '[' inside a value
    'version = 1\n# a comment with [brackets]\nname   =   "hand"\nkind = "file"\nsize = 10\n',
    'version = 1\nname = "x"\nnote = """\n[not a table]\n"""\nkind = "file"\nsize = 10\n',
    'version = 1\nname = "arr"\nlist = [\n  [1, 2],\n]\nkind = "file"\nsize = 10\n',
    # broken pointers: the name must never be read where decode refuses... or it must match
    'version = 1\nname = "dup"\nname = "dup2"\n',
    '<<<<<<< HEAD\nversion = 1\nname = "a"\n=======\nversion = 1\nname = "b"\n>>>>>>> other\n',
    'name = 3\n',
    '\xff\xfe not utf-8',
    '',
])
def test_hand_written_and_broken_pointers(text: str) -> None:
    files = (
        '\n[[files]]\npath = "m.safetensors"\nsize = 10\ndigest = "' + DIGEST + '"\nmanifest = "' + MANIFEST
        + '"\nformat = "safetensors"\n'
    )
    for data in (text.encode("utf-8", "surrogateescape"), (text + files).encode("utf-8", "surrogateescape")):
        _agrees_with_decode(data, "m.safetensors.model.toml")


def test_hand_edited_head_still_names_the_model() -> None:
    data = 'version = 1\n# edited\nname   =   "hand"\nkind = "file"\nsize = 10\n[[files]]\n'.encode()
    assert ptr.top_level_name(data) == "hand"


def test_add_still_refuses_a_taken_name_and_ignores_a_broken_pointer(repo: Repo) -> None:
    make_safetensors(repo.path / "a" / "one.safetensors", SMALL_TENSORS, seed=1)
    make_safetensors(repo.path / "b" / "two.safetensors", SMALL_TENSORS, seed=2)
    make_safetensors(repo.path / "c" / "three.safetensors", SMALL_TENSORS, seed=3)
    repo.gm("add", "-q", "a/one.safetensors", "--name", "shared")
    line = repo.gm_fails("add", "b/two.safetensors", "--name", "shared")
    assert "already used by a/one.safetensors.model.toml" in line
    repo.gm("add", "-q", "b/two.safetensors", "--name", "other")
    # a pointer broken below its head names nothing: its name is free, as before
    pointer = repo.path / "b" / "two.safetensors.model.toml"
    text = pointer.read_text()
    pointer.write_text(text.replace('format = "safetensors"', "format = 7"))
    repo.gm("add", "-q", "c/three.safetensors", "--name", "other")
    assert 'name = "other"' in (repo.path / "c" / "three.safetensors.model.toml").read_text()


def test_the_taken_name_check_reads_a_hand_spaced_pointer(repo: Repo, tmp_path: Path) -> None:
    make_safetensors(repo.path / "a" / "one.safetensors", SMALL_TENSORS, seed=1)
    make_safetensors(repo.path / "b" / "two.safetensors", SMALL_TENSORS, seed=2)
    repo.gm("add", "-q", "a/one.safetensors", "--name", "first")
    pointer = repo.path / "a" / "one.safetensors.model.toml"
    pointer.write_text(pointer.read_text().replace('name = "first"', 'name    =    "first"   # spaced by hand'))
    line = repo.gm_fails("add", "b/two.safetensors", "--name", "first")
    assert "already used by a/one.safetensors.model.toml" in line
