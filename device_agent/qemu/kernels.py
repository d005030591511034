"""Guest block addresses → the functions they belong to: per-kernel instruction counts.

Runs inside the emulated userland (standard library only). The plugin's per-block counts
(``counter.BlockCounter``) are keyed by guest address; ``/proc/self/maps`` (which QEMU emulates
for the guest) says which file each address comes from, and that file's ELF symbol table (LiteRT's
libraries are not stripped; system libraries keep ``.dynsym``) says which function. Only the files
that ran code are read, so a profile costs one symbol table per library touched.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["UNKNOWN", "MapEntry", "FunctionTable", "read_maps", "attribute"]

_ELF_MAGIC = b"\x7fELF"
_SHT_SYMTAB, _SHT_DYNSYM = 2, 11
_STT_FUNC = 2
_PT_LOAD = 1
_SECTION = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")
_SEGMENT = struct.Struct("<IIQQQQQQ")
UNKNOWN = "(unknown)"  # an address in no mapped file (JIT code, the vDSO) or in no function


@dataclass(frozen=True)
class MapEntry:
    """One executable mapping of ``/proc/self/maps``: [start, end) from ``path`` at file ``offset``."""

    start: int
    end: int
    offset: int
    path: str


def read_maps(text: str) -> list[MapEntry]:
    """The executable file mappings in ``/proc/self/maps`` text, sorted by start."""
    found = []
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or "x" not in parts[1] or not parts[5].startswith("/"):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        found.append(MapEntry(start, end, int(parts[2], 16), parts[5]))
    return sorted(found, key=lambda m: m.start)


class FunctionTable:
    """The functions of one ELF file: sorted starts, their sizes and names, read once.

    ``.symtab`` when present, else ``.dynsym``; only ``STT_FUNC`` symbols with a size. An unreadable
    or non-ELF64-little-endian file gives an empty table (its addresses stay unattributed).
    """

    def __init__(self, path: str) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.names: list[str] = []
        self.segments: list[tuple[int, int, int]] = []  # PT_LOAD (file offset, file size, vaddr - offset)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            return
        if data[:4] != _ELF_MAGIC or data[4] != 2 or data[5] != 1:  # ELF64, little-endian
            return
        self._read(data)

    def _read(self, data: bytes) -> None:
        phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
        phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 0x36)
        for i in range(phnum):
            kind, _flags, offset, vaddr, _paddr, filesz, _memsz, _align = _SEGMENT.unpack_from(data, phoff + i * phentsize)
            if kind == _PT_LOAD:
                self.segments.append((offset, filesz, vaddr - offset))
        sections = [_SECTION.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
        tables = {s[1]: s for s in sections if s[1] in (_SHT_SYMTAB, _SHT_DYNSYM)}
        table = tables.get(_SHT_SYMTAB) or tables.get(_SHT_DYNSYM)
        if table is None:
            return
        strings = sections[table[6]]
        str_off = strings[4]
        funcs = []
        for name, info, _other, shndx, value, size in _SYMBOL.iter_unpack(data[table[4] : table[4] + table[5]]):
            if info & 0xF == _STT_FUNC and size and shndx:
                funcs.append((value, size, name))
        funcs.sort()
        for value, size, name in funcs:
            end = data.index(b"\0", str_off + name)
            self.starts.append(value)
            self.ends.append(value + size)
            self.names.append(data[str_off + name : end].decode("utf-8", "replace"))

    def file_address(self, runtime: int, mapping: MapEntry) -> int:
        """The ELF virtual address of ``runtime``, an address inside ``mapping`` of this file.

        Within one PT_LOAD segment, virtual address minus file offset is constant; the mapping
        says which file offset ``runtime`` holds.
        """
        offset = runtime - mapping.start + mapping.offset
        for start, size, delta in self.segments:
            if start & ~0xFFF <= offset < start + size:
                return offset + delta
        return offset

    def name(self, address: int) -> str | None:
        """The function holding file address ``address``, or None."""
        i = bisect.bisect_right(self.starts, address) - 1
        return self.names[i] if i >= 0 and address < self.ends[i] else None


def attribute(counts: Mapping[int, int], maps: Iterable[MapEntry]) -> dict[tuple[str, str], int]:
    """{(library file name, function): instructions} for per-block ``counts`` at runtime addresses.

    An address in a mapped file but in none of its functions counts as that file's ``(unknown)``;
    one in no mapped file as ``("(unknown)", "(unknown)")``.
    """
    ordered = list(maps)
    starts = [m.start for m in ordered]
    tables: dict[str, FunctionTable] = {}
    totals: dict[tuple[str, str], int] = {}
    for address, insns in counts.items():
        i = bisect.bisect_right(starts, address) - 1
        if i < 0 or address >= ordered[i].end:
            key = (UNKNOWN, UNKNOWN)
        else:
            mapping = ordered[i]
            path = mapping.path
            table = tables.get(path)
            if table is None:
                table = tables[path] = FunctionTable(path)
            name = table.name(table.file_address(address, mapping))
            key = (os.path.basename(path), name or UNKNOWN)
        totals[key] = totals.get(key, 0) + insns
    return totals
