"""Checkpoints that survive a crash: atomic writes (temporary file, fsync, rename) and safe loading.

A checkpoint is written to a temporary file in the destination's directory, flushed to disk with
``fsync`` and then renamed over the destination with ``os.replace``, which is atomic on POSIX
and Windows. A process killed at any moment therefore leaves either the previous complete file
or the new complete file, never a truncated one; at worst a stray temporary file remains, whose
name ends in ``.tmp`` so that it is never mistaken for a checkpoint. Loading always uses
``torch.load(..., weights_only=True)``: a checkpoint holds tensors, numbers, strings, lists and
dicts only, and loading one never runs code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "TMP_SUFFIX", "atomic_save", "atomic_write_bytes", "atomic_write_text", "load", "remove_stale_temps"]

TMP_SUFFIX = ".tmp"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not match the run that tries to resume from it."""


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable where the platform allows opening a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=TMP_SUFFIX)
    mask = os.umask(0)  # mkstemp creates the file 0600; give it the mode an ordinary open() would
    os.umask(mask)
    try:
        os.chmod(tmp, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` atomically: readers see the old file or the new one, never a partial one."""
    _atomic_write(Path(path), lambda handle: torch.save(obj, handle))


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` atomically, e.g. a rendered PNG."""
    _atomic_write(Path(path), lambda handle: handle.write(data))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, e.g. a metrics file."""
    atomic_write_bytes(text.encode("utf-8"), path)


def load(path: str | Path, map_location: str | torch.device | None = "cpu") -> Any:
    """Load a checkpoint with ``weights_only=True``; raises :class:`CheckpointError` with the reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated, or holding objects weights_only refuses
        raise CheckpointError(f"cannot load checkpoint {path}: {type(exc).__name__}: {exc}") from exc


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete temporary files a killed writer of ``path`` left behind; returns what was removed.

    Only call this when no other process is writing ``path``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for stale in path.parent.glob(f"{path.name}.*{TMP_SUFFIX}"):
        stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed
