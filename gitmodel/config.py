"""The repository's .gitmodel.toml and where its store lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitmodel.errors import GitModelError, NotInitializedError, UnsupportedVersionError
from gitmodel.gitrepo import GitRepo

try:  # the parser pointers use (a dependency): every command then imports one TOML parser, not two
    import tomli as tomllib
except ImportError:  # pragma: no cover - the standard library's is the same parser
    import tomllib  # type: ignore[no-redef]

CONFIG_NAME = ".gitmodel.toml"
CONFIG_VERSION = 1
DEFAULT_CONFIG = (
    "# git-model settings for this repository (docs/user-guide.md).\n"
    f"version = {CONFIG_VERSION}\n"
)


@dataclass(frozen=True)
class RepoConfig:
    version: int
    # .gitmodel.toml has a non-empty [remotes] table: only then can a command have a remote
    # to ask (gitmodel.remote.config reads and checks it); status skips the remote modules
    names_remotes: bool = False


def load_config(repo: GitRepo) -> RepoConfig:
    path = repo.workdir / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotInitializedError(
            f"{repo.workdir} has no {CONFIG_NAME}: run 'git model init' first"
        ) from None
    except OSError as exc:
        raise GitModelError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GitModelError(f"{CONFIG_NAME} is not UTF-8 text: fix or restore it ('git checkout -- {CONFIG_NAME}')") from None
    try:
        doc = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer of over 4300 digits
        raise GitModelError(f"{CONFIG_NAME} is not valid TOML: {exc}") from None
    except RecursionError:  # arrays or tables nested hundreds deep: only damage does that
        raise GitModelError(f"{CONFIG_NAME} is not valid TOML: values nested too deeply") from None
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):  # TOML's true is a Python int
        raise GitModelError(f"{CONFIG_NAME}: 'version' must be an integer")
    if version > CONFIG_VERSION:
        raise UnsupportedVersionError(
            f"{CONFIG_NAME} has version {version}; this repository needs a newer git-model: pip install -U git-model"
        )
    remotes = doc.get("remotes")
    return RepoConfig(version, isinstance(remotes, dict) and bool(remotes))


def store_root(repo: GitRepo) -> Path:
    """`git config model.store` (relative to the working tree's top) or <common git dir>/model."""
    configured = repo.config_get("model.store")
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() else repo.workdir / path
    return repo.common_dir / "model"


def compression_level(repo: GitRepo) -> int:
    """`git config model.compression`: plain zstd's level for chunks (byte planes and deltas
    keep their own settings); 0 stores chunks raw. Default 1 (docs/codecs.md)."""
    configured = repo.config_get("model.compression")
    if not configured:
        return 1
    try:
        level = int(configured)
    except ValueError:
        raise GitModelError(
            f"git config model.compression is {configured!r}: use a zstd level from 0 (off) to 19"
        ) from None
    if not 0 <= level <= 19:
        raise GitModelError(f"git config model.compression is {level}: use a zstd level from 0 (off) to 19")
    return level
