"""The test hosts' cached bases: one per suite, and a stale one goes only when nothing uses it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from tests import testhosts


def _base(cache: Path, suite: str, key: str) -> Path:
    base = cache / f"rootfs-{suite}-{key}"
    (base / "etc").mkdir(parents=True)
    return base


def test_keys_differ_per_suite_and_bookworm_keeps_its_key() -> None:
    assert testhosts.base_key("trixie") != testhosts.base_key("bookworm")
    assert testhosts.base_key() == testhosts.base_key(testhosts.SUITE) == testhosts.base_key("bookworm")


def test_only_unused_stale_bases_of_the_same_suite_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(testhosts, "CACHE_DIR", tmp_path)
    current = _base(tmp_path, "trixie", "a" * 16)
    unused = _base(tmp_path, "trixie", "b" * 16)
    in_use = _base(tmp_path, "trixie", "c" * 16)
    building = _base(tmp_path, "trixie", "d" * 16 + ".tmp")
    other_suite = _base(tmp_path, "bookworm", "e" * 16)
    # Another test holds in_use as base_rootfs() does (a shared lock on its own open of the file).
    holder = os.open(tmp_path / f"{in_use.name}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_SH)
    try:
        testhosts._drop_stale_bases("trixie", current)
    finally:
        os.close(holder)
    assert not unused.exists() and not (tmp_path / f"{unused.name}.lock").exists()
    assert all(base.is_dir() for base in (current, in_use, building, other_suite))
