"""kdevbox-vm boots a bzImage's own vmlinux through PVH (no decompression in the guest): the payload
found by the setup header, each compression the standard library reads, the PVH note required, and
the cache by content. The real kernels (Debian's xz bzImage, kdevbox's tinyconfig build) boot this
way in tests/integration/test_guest.py."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from kdevbox import kdevbox_vm as vm
from tests.unit.test_kdevbox_vm import guest_in, options


def note(name: bytes, kind: int, desc: bytes) -> bytes:
    def pad(data: bytes) -> bytes:
        return data + b"\0" * (-len(data) % 4)

    return struct.pack("<III", len(name), len(desc), kind) + pad(name) + pad(desc)


def elf(*notes: bytes, segments: int = 2) -> bytes:
    """A 64-bit ELF whose last program header is a PT_NOTE holding notes (a PT_LOAD before it)."""
    notes_at = 64 + 56 * segments
    body = b"".join(notes)
    header = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x1000000, 64, 0, 0, 64, 56, segments, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x1000000, 0x1000000, notes_at, notes_at, 0x1000)
    phdrs = load * (segments - 1) + struct.pack("<IIQQQQQQ", 4, 4, notes_at, 0, 0, len(body), len(body), 4)
    return header + phdrs + body + b"kernel text " * 100


PVH_ELF = elf(note(b"GNU\0", 3, b"build-id"), note(b"Xen\0", 6, b"linux\0"), note(b"Xen\0", 18, b"\0" * 4))


def bzimage(payload: bytes, protocol: int = 0x20F, offset: int = 0x2C0, setup_sects: int = 3) -> bytes:
    """A bzImage's layout: setup sectors with the header (0 of them meaning 4), then the
    decompressor's code with payload at payload_offset and more after it, as the kernel has."""
    setup = bytearray(((setup_sects or 4) + 1) * 512)
    setup[vm.SETUP_SECTS] = setup_sects
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, vm.PROTOCOL, protocol)
    struct.pack_into("<II", setup, vm.PAYLOAD, offset, len(payload))
    return bytes(setup) + b"\x90" * offset + payload + b"\xcc" * 64


def sized(compressed: bytes, data: bytes) -> bytes:
    """As the kernel's compression rules write a payload: the stream, then the size (size_append)."""
    return compressed + struct.pack("<I", len(data))


X86_XZ = [{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2, "preset": 6}]  # as the kernel's xz --x86
COMPRESSIONS: dict[str, Callable[[bytes], bytes]] = {
    "xz": lambda data: sized(lzma.compress(data, check=lzma.CHECK_CRC32, filters=X86_XZ), data),
    "gzip": lambda data: sized(gzip.compress(data, mtime=0), data),
    "bzip2": lambda data: sized(bz2.compress(data), data),
    "lzma": lambda data: sized(lzma.compress(data, lzma.FORMAT_ALONE), data),
}


@pytest.mark.parametrize("compression", sorted(COMPRESSIONS))
def test_each_compression_unpacks_to_the_kernels_elf(compression: str) -> None:
    relocs = b"\x00\x10\x00\x81" * 8  # x86 appends vmlinux.relocs to what it compresses
    image = bzimage(COMPRESSIONS[compression](PVH_ELF + relocs))
    assert vm.unpack_bzimage(image) == PVH_ELF + relocs
    assert vm.unpack_bzimage(bzimage(COMPRESSIONS[compression](PVH_ELF), setup_sects=0)) == PVH_ELF


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(bzimage(lzma.compress(elf(note(b"Xen\0", 6, b"linux\0")))), id="no PVH entry note"),
        pytest.param(bzimage(lzma.compress(elf(note(b"Xem\0", 18, b"\0" * 4)))), id="18 of another name"),
        pytest.param(bzimage(lzma.compress(b"not an ELF" * 10)), id="not an ELF"),
        pytest.param(bzimage(b"\x28\xb5\x2f\xfd" + b"\0" * 64), id="zstd"),
        pytest.param(bzimage(lzma.compress(PVH_ELF)[:-40]), id="truncated payload"),
        pytest.param(bzimage(lzma.compress(PVH_ELF), protocol=0x207), id="boot protocol 2.07"),
        pytest.param(b"MZ" + b"\0" * 100, id="too short"),
        pytest.param(bzimage(lzma.compress(PVH_ELF)).replace(b"HdrS", b"HdrX", 1), id="no HdrS"),
        pytest.param(bzimage(lzma.compress(PVH_ELF * 40000)), id="past UNPACKED_MAX"),
    ],
)
def test_what_cannot_boot_through_pvh_is_none(image: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """QEMU then loads the bzImage, as before: a kernel without PVH would not boot from its ELF."""
    monkeypatch.setattr(vm, "UNPACKED_MAX", len(PVH_ELF) * 1000)
    assert vm.unpack_bzimage(image) is None


def test_a_note_segment_past_the_end_is_not_read() -> None:
    bad = bytearray(PVH_ELF)
    struct.pack_into("<Q", bad, 64 + 56 + 32, 1 << 40)  # the PT_NOTE's p_filesz
    assert vm.has_pvh_entry(bytes(bad))  # bounded by the file: the note is still found
    struct.pack_into("<H", bad, 0x38, 1000)  # e_phnum beyond the file
    assert not vm.has_pvh_entry(bytes(bad[: 64 + 56]))


def test_loadable_unpacks_once_per_content(tmp_path: Path) -> None:
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(bzimage(lzma.compress(PVH_ELF)))
    cache = str(tmp_path / "cache")
    first = vm.loadable(cache, str(kernel))
    assert first != str(kernel) and Path(first).read_bytes() == PVH_ELF
    assert oct(Path(first).parent.stat().st_mode & 0o777) == "0o700"
    made = os.stat(first).st_ino
    assert vm.loadable(cache, str(kernel)) == first and os.stat(first).st_ino == made  # not unpacked again
    kernel.write_bytes(bzimage(lzma.compress(PVH_ELF + b"rebuilt")))
    second = vm.loadable(cache, str(kernel))
    assert second != first and Path(second).read_bytes() == PVH_ELF + b"rebuilt"


def test_a_bzimage_that_cannot_be_unpacked_is_loaded_itself_and_remembered(tmp_path: Path) -> None:
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(bzimage(b"\x28\xb5\x2f\xfd" + b"\0" * 64))
    cache = tmp_path / "cache"
    assert vm.loadable(str(cache), str(kernel)) == str(kernel)
    (entry,) = (cache / "vmlinux").iterdir()
    assert entry.stat().st_size == 0  # tried once, not on every boot
    assert vm.loadable(str(cache), str(kernel)) == str(kernel)


def test_the_cache_keeps_the_kernels_used_last(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    kernel = tmp_path / "bzImage"

    def boot(build: bytes) -> str:
        kernel.write_bytes(bzimage(lzma.compress(PVH_ELF + build)))
        return vm.loadable(cache, str(kernel))

    used = []
    for build in range(vm.UNPACKED_KEPT):
        used.append(boot(bytes([build])))
        os.utime(used[-1], (build, build))  # an order the clock's resolution cannot blur
    made = os.stat(used[0]).st_ino
    assert boot(bytes([0])) == used[0]  # used again: now the newest
    newest = boot(b"new")
    kept = sorted(str(path) for path in (tmp_path / "cache/vmlinux").iterdir())
    assert kept == sorted([newest, used[0], *used[2:]])  # the one used longest ago went
    assert os.stat(used[0]).st_ino == made


def test_a_cache_that_cannot_be_written_boots_the_bzimage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk or a read-only home: QEMU boots the bzImage as it did before, said once a run."""
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(bzimage(lzma.compress(PVH_ELF)))
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache dir would be")
    assert vm.loadable(str(blocked), str(kernel)) == str(kernel)
    assert f"booting {kernel} itself: cannot keep its vmlinux in {blocked}/vmlinux" in capsys.readouterr().err


def test_a_read_only_cache_is_still_read(tmp_path: Path) -> None:
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(bzimage(lzma.compress(PVH_ELF)))
    cache = tmp_path / "cache"
    entry = vm.loadable(str(cache), str(kernel))
    (cache / "vmlinux").chmod(0o500)
    os.chmod(entry, 0o400)
    try:
        assert vm.loadable(str(cache), str(kernel)) == entry
    finally:
        (cache / "vmlinux").chmod(0o700)


def test_pruning_takes_interrupted_temp_files_and_tolerates_a_racing_run(tmp_path: Path) -> None:
    directory = tmp_path / "vmlinux"
    directory.mkdir()
    stale, fresh = directory / ".kdevbox-vm-stale", directory / ".kdevbox-vm-writing"
    for temp in (stale, fresh):
        temp.write_bytes(b"half a kernel")
    os.utime(stale, (0, 0))
    entries = [directory / f"{n:064x}" for n in range(vm.UNPACKED_KEPT + 1)]
    for n, entry in enumerate(entries):
        entry.write_bytes(b"ELF")
        os.utime(entry, (n + 10, n + 10))
    real_getmtime = os.path.getmtime

    def racing(path: str) -> float:  # another run pruned this one just now
        if path == str(entries[1]):
            os.unlink(path)
        return real_getmtime(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os.path, "getmtime", racing)
        vm._prune(str(directory), keep=str(entries[-1]))
    assert sorted(directory.iterdir()) == sorted([fresh, entries[0], *entries[2:]])


def test_a_boot_loads_the_unpacked_kernel_unless_bzimage_is_asked(tmp_path: Path) -> None:
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(bzimage(lzma.compress(PVH_ELF)))
    settings = guest_in(tmp_path, kernel)
    for asked, entry in (([], "pvh"), (["--bzimage"], "bzimage")):
        argv = ["--settings", "s", "exec", "--accel", "tcg", *asked, "--", "true"]
        boot = vm._boot(settings, vm.build_parser().parse_args(argv))
        loaded = options(vm.qemu_argv(settings, boot), "-kernel")[0]
        assert boot.entry == entry and boot.kernel == str(kernel)
        assert Path(loaded).read_bytes() == (PVH_ELF if entry == "pvh" else kernel.read_bytes())
