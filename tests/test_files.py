"""atomic_write: whole files, unique temporary names, permissions kept."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from newsletter import files
from newsletter.files import atomic_write


def test_writes_text_as_utf8_and_bytes_as_they_are(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a.txt", "Grüße\n")
    atomic_write(tmp_path / "deep" / "b.bin", b"\x00\xff")
    assert (tmp_path / "a.txt").read_bytes() == "Grüße\n".encode()
    assert (tmp_path / "deep" / "b.bin").read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.bin", "deep"]


def test_keeps_the_mode_of_an_existing_file_and_gives_new_files_644(tmp_path: Path) -> None:
    target = tmp_path / "issue.yaml"
    atomic_write(target, "one")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    target.chmod(0o600)
    atomic_write(target, "two")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == "two"


def test_temporary_files_go_to_temp_dir_and_are_removed_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    target = tmp_path / "site" / "index.html"
    atomic_write(target, b"old", temp_dir=scratch)

    def fail(src: str, dst: str) -> None:
        assert Path(src).parent == scratch
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new", temp_dir=scratch)
    assert target.read_bytes() == b"old" and list(scratch.iterdir()) == []


def test_concurrent_writers_never_share_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.html"
    payloads = [bytes([n]) * 200_000 for n in range(8)]
    start = threading.Barrier(len(payloads))

    def write(data: bytes) -> None:
        start.wait()
        for _ in range(5):
            atomic_write(target, data)

    threads = [threading.Thread(target=write, args=(data,)) for data in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_bytes() in payloads  # one writer's data whole, never a mix
    assert os.listdir(tmp_path) == ["out.html"]


def test_only_durable_writes_are_flushed_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    atomic_write(tmp_path / "kept.eml", b"one")
    assert len(synced) == 1
    atomic_write(tmp_path / "copy.eml", b"two", durable=False)
    assert len(synced) == 1
    assert (tmp_path / "copy.eml").read_bytes() == b"two"
