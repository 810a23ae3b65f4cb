"""The one atomic-write helper: complete content under the final name, or the old content."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.utils.atomic import atomic_dir, atomic_move, atomic_write, atomic_write_text


def test_atomic_write_text_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failed_write_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")

    def boom(fh: object) -> None:
        fh.write(b"partial")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_dir_success_failure_and_replace(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    with atomic_dir(target) as tmp:
        (tmp / "w.bin").write_bytes(b"1")
    assert (target / "w.bin").read_bytes() == b"1"
    with pytest.raises(FileExistsError), atomic_dir(target):
        pass
    with pytest.raises(RuntimeError), atomic_dir(target, replace=True) as tmp:
        (tmp / "w.bin").write_bytes(b"2")
        raise RuntimeError("mid-way")
    assert (target / "w.bin").read_bytes() == b"1"
    with atomic_dir(target, replace=True) as tmp:
        (tmp / "w.bin").write_bytes(b"2")
    assert (target / "w.bin").read_bytes() == b"2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_atomic_move_never_replaces(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    with pytest.raises(FileExistsError):
        atomic_move(tmp_path / "src", tmp_path / "dst")
    atomic_move(tmp_path / "src", tmp_path / "new")
    assert (tmp_path / "new").is_dir() and not (tmp_path / "src").exists()
