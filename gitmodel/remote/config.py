"""The [remotes.<name>] tables of .gitmodel.toml: read them, add or remove one, open a remote by name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import ParseResult, unquote, urlparse

from gitmodel.config import CONFIG_NAME, load_config
from gitmodel.errors import GitModelError, one_line
from gitmodel.gitrepo import GitRepo
from gitmodel.remote.base import Remote
from gitmodel.store.atomic import write_file_atomic

try:  # the parser pointers use (a dependency): every command then imports one TOML parser, not two
    import tomli as tomllib
except ImportError:  # pragma: no cover - the standard library's is the same parser
    import tomllib  # type: ignore[no-redef]

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class RemoteSpec:
    name: str
    url: str
    endpoint_url: str | None = None


def load_remotes(git: GitRepo) -> dict[str, RemoteSpec]:
    """Every remote named in .gitmodel.toml, by name."""
    load_config(git)
    doc = tomllib.loads((git.workdir / CONFIG_NAME).read_text(encoding="utf-8"))
    table = doc.get("remotes", {})
    if not isinstance(table, dict):
        raise GitModelError(f"{CONFIG_NAME}: 'remotes' must be a table of [remotes.<name>] tables")
    out = {}
    for name, entry in table.items():
        where = f"{CONFIG_NAME}: [remotes.{one_line(name)}]"  # a quoted name may hold a newline
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise GitModelError(f"{where} needs url = \"s3://bucket/prefix\" or a folder")
        unknown = sorted(set(entry) - {"url", "endpoint_url"})
        if unknown:
            raise GitModelError(f"{where}: unknown key {one_line(unknown[0])}; the keys there are url, endpoint_url")
        endpoint = entry.get("endpoint_url")
        if endpoint is not None and not isinstance(endpoint, str):
            raise GitModelError(f"{where}: endpoint_url must be a string")
        out[name] = RemoteSpec(name, entry["url"], endpoint)
    return out


def _parse(url: str) -> ParseResult:
    """urlparse, with its ValueError (an unclosed '[', say) as one line a user can act on."""
    try:
        return urlparse(url)
    except ValueError as exc:
        raise GitModelError(f"'{one_line(url)}' is not a URL a remote can use: {exc}") from None


def check_url(url: str) -> None:
    """Refuse a URL no remote can be made of, before it is written down."""
    parsed = _parse(url)
    if parsed.scheme == "s3":
        if not _BUCKET_RE.fullmatch(parsed.netloc):
            raise GitModelError(f"'{url}': an S3 url is s3://BUCKET[/PREFIX] with a valid bucket name")
    elif parsed.scheme not in ("", "file") and not (len(parsed.scheme) == 1 and url[1:2] == ":"):
        raise GitModelError(f"'{url}': a remote is s3://bucket/prefix, file:///path or a folder path")


def add_remote(git: GitRepo, name: str, url: str, endpoint_url: str | None = None, force: bool = False) -> None:
    """Append a [remotes.<name>] table to .gitmodel.toml (replacing one of that name with `force`)."""
    if not _NAME_RE.fullmatch(name):
        raise GitModelError(f"'{name}' is not a remote name: use letters, digits, '.', '_' or '-'")
    check_url(url)
    if endpoint_url is not None and not _parse(endpoint_url).scheme.startswith("http"):
        raise GitModelError(f"--endpoint-url '{endpoint_url}' must be an http:// or https:// URL")
    existing = load_remotes(git)
    if name in existing and not force:
        raise GitModelError(
            f"remote '{name}' already exists ({existing[name].url}); 'git model remote remove {name}' first, or --force"
        )
    path = git.workdir / CONFIG_NAME
    text = path.read_text(encoding="utf-8")
    if name in existing:
        text = _without_table(text, name)
    table = f"\n[remotes.{name}]\nurl = {_toml_str(url)}\n"
    if endpoint_url:
        table += f"endpoint_url = {_toml_str(endpoint_url)}\n"
    new = text.rstrip("\n") + "\n" + table
    tomllib.loads(new)  # never write a file we cannot read back
    write_file_atomic(path, new.encode())


def remove_remote(git: GitRepo, name: str) -> None:
    existing = load_remotes(git)
    if name not in existing:
        raise GitModelError(f"no remote '{name}'; {_listing(existing)}")
    path = git.workdir / CONFIG_NAME
    new = _without_table(path.read_text(encoding="utf-8"), name)
    if name in load_remotes_from_text(new):
        raise GitModelError(f"{CONFIG_NAME}: cannot remove remote '{name}' (written inline?); edit the file by hand")
    write_file_atomic(path, new.encode())


def load_remotes_from_text(text: str) -> dict[str, object]:
    table = tomllib.loads(text).get("remotes", {})
    return table if isinstance(table, dict) else {}


def choose(git: GitRepo, name: str | None) -> RemoteSpec:
    """The remote named, else `origin`, else the only one; one line when there is none."""
    remotes = load_remotes(git)
    if name is not None:
        if name not in remotes:
            raise GitModelError(f"no remote '{name}'; {_listing(remotes)}")
        return remotes[name]
    if "origin" in remotes:
        return remotes["origin"]
    if len(remotes) == 1:
        return next(iter(remotes.values()))
    if not remotes:
        raise GitModelError("no remote is configured; add one with 'git model remote add origin s3://bucket/prefix' (or a folder)")
    raise GitModelError(f"several remotes and none is 'origin': name one ({', '.join(sorted(remotes))})")


def open_remote(git: GitRepo, spec: RemoteSpec) -> Remote:
    """The remote a spec names: S3 for s3://, else a folder (relative paths from the repository's top)."""
    parsed = _parse(spec.url)
    if parsed.scheme == "s3":
        from gitmodel.remote.s3 import S3Remote

        return S3Remote(parsed.netloc, parsed.path, spec.url, spec.endpoint_url)
    if parsed.scheme == "file":
        root = Path(unquote(parsed.path))
    else:
        root = Path(spec.url).expanduser()
        if not root.is_absolute():
            root = git.workdir / root
    from gitmodel.remote.folder import FolderRemote

    return FolderRemote(root, spec.url)


def _listing(remotes: dict[str, RemoteSpec]) -> str:
    if not remotes:
        return "none is configured: 'git model remote add origin URL'"
    return "the remotes are " + ", ".join(sorted(remotes))


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _without_table(text: str, name: str) -> str:
    """`text` without the lines of the [remotes.<name>] table (its header to the next header)."""
    out: list[str] = []
    skipping = False
    header = re.compile(r"\s*\[")
    mine = re.compile(r"\s*\[\s*remotes\s*\.\s*(\"?)" + re.escape(name) + r"\1\s*\]\s*(#.*)?$")
    for line in text.splitlines(keepends=True):
        if header.match(line):
            skipping = bool(mine.match(line))
        if not skipping:
            out.append(line)
    return "".join(out).rstrip("\n") + "\n"
