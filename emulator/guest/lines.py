"""An image's DWARF line table: which source line a link address is.

The one reader of .debug_line in the guest layer (ElfImage.locate and
ImageSymbols.line_at both ask it; coverage/lines.py reads the same table
for another question, which lines could run at all).

The rule is DWARF's (DWARF 5, 6.2): a row holds from its address up to
the next row's address within its sequence, and a sequence ends at its
end_sequence row's address.  Several rows at one address (the compiler
emits them as it moves through a statement) leave the last one in force,
which is the one `addr2line` reports, so rows at equal addresses keep their
program order.  Addresses past every sequence (data, padding between
functions) have no line.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LineTable:
    """Rows sorted by address; rows[i] is (file's base name, line, the
    end of the sequence holding it) for the row at addrs[i]."""
    addrs: list[int] = field(default_factory=list)
    rows: list[tuple[str, int, int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.addrs)

    def at(self, link: int) -> tuple[str, int] | None:
        """(file, line) in force at a link address, None outside every
        sequence."""
        i = bisect.bisect_right(self.addrs, link) - 1
        if i < 0:
            return None
        name, line, sequence_end = self.rows[i]
        return (name, line) if link < sequence_end else None


def read_line_table(path: Path) -> LineTable:
    """The line table of an ELF file; empty when it has none or cannot be
    read (a stripped image, a raw binary, broken DWARF)."""
    from elftools.common.exceptions import DWARFError, ELFError
    from elftools.elf.elffile import ELFFile
    rows: list[tuple[int, str, int, int]] = []
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            if not elf.has_dwarf_info():
                return LineTable()
            dwarf = elf.get_dwarf_info()
            for cu in dwarf.iter_CUs():
                prog = dwarf.line_program_for_CU(cu)
                if prog is None:
                    continue
                names = prog["file_entry"]
                # DWARF 5 numbers files from 0, earlier versions from 1
                first = 0 if prog.header["version"] >= 5 else 1
                sequence: list[tuple[int, str, int]] = []
                for entry in prog.get_entries():
                    st = entry.state
                    if st is None:
                        continue
                    if st.end_sequence:
                        rows += [(a, n, ln, st.address) for a, n, ln in sequence]
                        sequence = []
                        continue
                    i = st.file - first
                    name = names[i].name.decode() if 0 <= i < len(names) else "?"
                    sequence.append((st.address, name, st.line))
    except (OSError, ELFError, DWARFError):
        return LineTable()
    rows.sort(key=lambda r: r[0])      # stable: equal addresses keep program order
    return LineTable([r[0] for r in rows], [(r[1], r[2], r[3]) for r in rows])
