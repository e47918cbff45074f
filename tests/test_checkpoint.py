"""Atomic checkpoints: complete or absent, never partial; loading refuses anything but plain data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vaelib.classifier
from vaelib import checkpoint


def test_round_trip_with_weights_only(tmp_path: Path) -> None:
    state = {"w": torch.arange(6.0).view(2, 3), "step": 7, "name": "run", "losses": [1.5, 2.5], "order": None}
    path = tmp_path / "sub" / "ckpt.pt"
    checkpoint.atomic_save(state, path)
    back = checkpoint.load(path)
    assert torch.equal(back["w"], state["w"]) and back["step"] == 7 and back["losses"] == [1.5, 2.5]
    assert back["order"] is None and back["name"] == "run"
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]


class _Custom:
    pass


def test_load_refuses_arbitrary_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"obj": _Custom()}, path)
    with pytest.raises(checkpoint.CheckpointError, match="cannot load checkpoint"):
        checkpoint.load(path)


def test_missing_and_truncated_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint at"):
        checkpoint.load(tmp_path / "absent.pt")
    path = tmp_path / "ckpt.pt"
    checkpoint.atomic_save({"w": torch.ones(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load(path)


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ckpt.pt"
    checkpoint.atomic_save({"step": 1}, path)

    def broken_save(obj: object, handle) -> None:  # writes half a file, then the process "fails"
        handle.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.atomic_save({"step": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load(path) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_stale_temps_are_recognised_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    checkpoint.atomic_save({"step": 1}, path)
    stale = tmp_path / f"ckpt.pt.abc123{checkpoint.TMP_SUFFIX}"
    stale.write_bytes(b"half")
    other = tmp_path / "other.pt"
    other.write_bytes(b"x")
    assert checkpoint.remove_stale_temps(path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "other.pt"]


def test_atomic_text(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    checkpoint.atomic_write_text('{"a": 1}\n', path)
    checkpoint.atomic_write_text('{"a": 2}\n', path)
    assert path.read_text() == '{"a": 2}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_classifier_cache_uses_the_atomic_save() -> None:
    assert vaelib.classifier.atomic_save is checkpoint.atomic_save
