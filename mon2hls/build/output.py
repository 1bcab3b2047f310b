"""Atomic output folders: everything is written into a temporary sibling folder, then renamed into place."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import ConfigError

__all__ = ["check_output_folder", "atomic_folder"]

logger = logging.getLogger(__name__)


def _missing_ancestors(folder: Path) -> list[Path]:
    missing = []
    for parent in folder.parents:
        if parent.exists():
            break
        missing.append(parent)
    return list(reversed(missing))


def check_output_folder(folder: str | os.PathLike, force: bool) -> Path:
    """Check before any work that `folder` can be written: it is absent (or `force`) and its parent is writable.

    Raises ConfigError with the path and the fix. The parent itself may be
    missing; `atomic_folder` creates it.
    """
    folder = Path(folder).absolute()
    if folder.exists() and not force:
        raise ConfigError(f"output folder {folder} already exists; pass --force to replace it or choose another -o")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output path {folder} exists and is not a folder; remove it or choose another -o")
    existing = next((p for p in folder.parents if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise ConfigError(
            f"cannot create output folder {folder}: {existing} is not a folder; choose -o inside a writable folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot create output folder {folder}: {existing} is not writable; "
            f"choose -o inside a writable folder or change the permissions of {existing}"
        )
    return folder


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike, force: bool) -> Iterator[Path]:
    """Yield a temporary folder beside `folder`; on success rename it to `folder`, on any error remove it.

    An existing `folder` is replaced only with `force`, and only after the new
    content is complete: it is first renamed aside, then removed. Parents
    created here are removed again when the build fails.
    """
    folder = check_output_folder(folder, force)
    created = _missing_ancestors(folder)
    try:
        for parent in created:
            parent.mkdir()
        temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    except OSError as error:
        _remove_created(created)
        raise ConfigError(
            f"cannot create output folder {folder}: {error.strerror}; choose -o inside a writable folder"
        ) from None

    try:
        yield temporary
        # mkdtemp creates the folder with mode 0700; give the result the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o777 & ~umask)
        _replace(temporary, folder, force)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        _remove_created(created)
        raise


def _replace(temporary: Path, folder: Path, force: bool) -> None:
    if not folder.exists():
        temporary.rename(folder)
        return
    if not force:
        raise ConfigError(f"output folder {folder} appeared during the build; pass --force to replace it")
    aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
    aside.rmdir()
    folder.rename(aside)
    try:
        temporary.rename(folder)
    except OSError:
        aside.rename(folder)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    logger.info("replaced the existing folder %s", folder)


def _remove_created(created: list[Path]) -> None:
    for parent in reversed(created):
        with contextlib.suppress(OSError):
            parent.rmdir()
