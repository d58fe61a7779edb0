"""Reading device trees on the Python side, with pylibfdt.

Used to size the machine's RAM, find the console device, and decode the
final tree the wrapper hands to the kernel.  Errors name the tree and what
is wrong with it, never a bare libfdt exception.
"""

from __future__ import annotations

from dataclasses import dataclass

import libfdt

from ..errors import InputError


class DeviceTreeError(InputError):
    """A device tree bwemu cannot use; the text says which and why."""


@dataclass(frozen=True)
class ConsoleNode:
    kind: str        # "uart" or "hvc"
    path: str
    address: int     # UART base, or vty terminal number
    reg_shift: int = 0
    io_width: int = 1


#: ns16550 registers are at most 16 bytes apart (reg-shift 4) on any real board.
MAX_REG_SHIFT = 4


def _show(raw: bytes) -> str:
    return "<" + " ".join(f"0x{int.from_bytes(raw[i:i + 4], 'big'):x}"
                          for i in range(0, len(raw) - 3, 4)) + ">" if len(raw) >= 4 else "[]"


def _cells(data: bytes, n: int) -> int:
    return int.from_bytes(data[:4 * n], "big")


FDT_MAGIC = 0xD00DFEED
FDT_HEADER_SIZE = 40
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9


def _u32(blob: bytes, off: int) -> int:
    return int.from_bytes(blob[off:off + 4], "big")


#: Trees that passed check_structure, by content: a boot reads its input,
#: its final tree and the scenario's several times over (every DeviceTree
#: checks), and a campaign or a test session boots the same trees again.
_passed: set[bytes] = set()


def check_structure(blob: bytes, name: str = "device tree") -> None:
    """The structural check of docs/kexec.md (rules 1-26, the wrapper's
    step 0), with the blob's length as the buffer: the header and its
    blocks, the reserve map's terminator, every structure token, balanced
    nesting with one unnamed root, every property's value inside the
    structure block and its name a NUL-terminated string inside the strings
    block.  A tree passes here exactly when the wrapper's fdt_check_full()
    passes it (tests/test_fdt.py compares the two).  Raises DeviceTreeError
    naming the problem; a tree that passed once is not walked again."""
    key = blob if type(blob) is bytes else None      # an immutable content
    if key is not None and key in _passed:
        return
    _check_structure(blob, name)
    if key is not None:
        if len(_passed) >= 256:
            _passed.clear()
        _passed.add(key)


def _check_structure(blob: bytes, name: str) -> None:
    def bad(what: str) -> DeviceTreeError:
        return DeviceTreeError(f"{name}: {what}")
    if len(blob) < FDT_HEADER_SIZE:
        raise bad(f"{len(blob)} bytes, shorter than the 40-byte header")
    if _u32(blob, 0) != FDT_MAGIC:
        raise bad(f"magic is 0x{_u32(blob, 0):08x}, not 0xd00dfeed")
    total, off_struct, off_strings, off_rsv, version, last_comp = (
        _u32(blob, 4 * i) for i in range(1, 7))
    size_strings, size_struct = _u32(blob, 32), _u32(blob, 36)
    if version < 16 or last_comp > 17 or last_comp > version:
        raise bad(f"header version {version} / last_comp_version {last_comp}: "
                  f"version 16 and later, compatible with 17, are read")
    hsize = FDT_HEADER_SIZE if version >= 17 else 36
    if not hsize <= total < 1 << 31:
        raise bad(f"header totalsize 0x{total:x} is not between the header's size and 2 GiB")
    if total > len(blob):
        raise bad(f"header totalsize 0x{total:x} is larger than the 0x{len(blob):x} bytes given")
    if off_rsv % 8 or off_rsv < hsize:
        raise bad(f"header off_mem_rsvmap 0x{off_rsv:x} is not an 8-byte aligned "
                  f"offset past the header")
    if off_struct % 4 or off_struct < hsize:
        raise bad(f"header off_dt_struct 0x{off_struct:x} is not a 4-byte aligned "
                  f"offset past the header")
    if off_strings < hsize:
        raise bad(f"header off_dt_strings 0x{off_strings:x} lies inside the header")
    if off_rsv + 16 > total:
        raise bad(f"header off_mem_rsvmap 0x{off_rsv:x} leaves no room for the reserve "
                  f"map inside totalsize 0x{total:x}")
    if off_struct > total:
        raise bad(f"header off_dt_struct 0x{off_struct:x} lies outside totalsize "
                  f"0x{total:x}")
    if version < 17:          # the size is not recorded: up to the next block
        size_struct = (off_strings if off_strings >= off_struct else total) - off_struct
    for field_name, off, size in (("off_dt_struct", off_struct, size_struct),
                                  ("off_dt_strings", off_strings, size_strings)):
        if off + size > total:
            raise bad(f"header {field_name} 0x{off:x} + 0x{size:x} bytes lies "
                      f"outside totalsize 0x{total:x}")
    if size_struct % 4 or size_struct < 16:
        raise bad(f"the structure block's size 0x{size_struct:x} is not a multiple of 4 "
                  f"of at least 16 bytes")
    if (size_strings and off_struct < off_strings + size_strings
            and off_strings < off_struct + size_struct):
        raise bad("the structure and strings blocks overlap")
    # The reserve map's room: up to the first block after it, or totalsize;
    # none when a block that starts before it reaches into it.
    room = total
    for off, size in ((off_struct, size_struct), (off_strings, size_strings)):
        if size and off >= off_rsv:
            room = min(room, off)
        elif size and off + size > off_rsv:
            room = off_rsv
    at = off_rsv
    while True:
        if at + 16 > room:
            raise bad("the memory reserve map has no (0, 0) terminator before the next "
                      "block or totalsize")
        if blob[at:at + 16] == bytes(16):
            break
        at += 16
    strings = blob[off_strings:off_strings + size_strings]
    end = off_struct + size_struct
    pos, depth, roots = off_struct, 0, 0
    while True:
        if pos >= end:
            raise bad("the structure block has no FDT_END" if depth == 0 else
                      f"{depth} node(s) left open at the end of the structure block")
        token = _u32(blob, pos)
        pos += 4
        if token == FDT_BEGIN_NODE:
            nul = blob.find(b"\0", pos, end)
            if nul < 0:
                raise bad(f"node name at 0x{pos:x} has no NUL inside the structure block")
            if depth == 0:
                roots += 1
                if roots > 1:
                    raise bad(f"a second root node at 0x{pos - 4:x}")
                if nul != pos:
                    raise bad("the root node has a name")
            depth += 1
            pos = (nul + 1 + 3) & ~3
        elif token == FDT_END_NODE:
            if depth == 0:
                raise bad(f"FDT_END_NODE with no node open at 0x{pos - 4:x}")
            depth -= 1
        elif token == FDT_PROP:
            if depth == 0:
                raise bad(f"a property outside every node at 0x{pos - 4:x}")
            if pos + 8 > end:
                raise bad(f"property header at 0x{pos:x} runs past the structure block")
            length, nameoff = _u32(blob, pos), _u32(blob, pos + 4)
            pos += 8
            if pos + length > end:
                raise bad(f"property at 0x{pos - 12:x}: length 0x{length:x} runs past "
                          f"the structure block")
            if nameoff >= size_strings or strings.find(b"\0", nameoff) < 0:
                raise bad(f"property at 0x{pos - 12:x}: name offset 0x{nameoff:x} is not "
                          f"a string inside the strings block")
            pos = (pos + length + 3) & ~3
        elif token == FDT_NOP:
            continue
        elif token == FDT_END:
            if depth != 0:
                raise bad(f"FDT_END inside an open node at 0x{pos - 4:x}")
            if roots == 0:
                raise bad("no root node")
            if version >= 17 and pos != end:
                raise bad(f"token {_u32(blob, pos)} at 0x{pos:x}, after FDT_END")
            return
        else:
            raise bad(f"unknown structure token 0x{token:x} at 0x{pos - 4:x}")


def reserve_map(blob: bytes) -> list[tuple[int, int]]:
    """The reserve map's (address, size) entries, read as the devicetree
    spec defines it: big-endian u64 pairs from off_mem_rsvmap up to the
    entry whose address and size are both 0.  (libfdt, and so pylibfdt,
    stops at the first entry of size 0 instead: an entry (A, 0) in the
    middle would end the map early, while the wrapper reads on.)  A map
    without its terminator gives what lies inside the blob."""
    out: list[tuple[int, int]] = []
    if len(blob) < FDT_HEADER_SIZE:
        return out
    off = _u32(blob, 16)
    while off + 16 <= len(blob):
        addr = int.from_bytes(blob[off:off + 8], "big")
        size = int.from_bytes(blob[off + 8:off + 16], "big")
        if addr == 0 and size == 0:
            break
        out.append((addr, size))
        off += 16
    return out


def check_fits(blob: bytes, name: str = "device tree") -> None:
    """What a loader needs of a tree file before it can place it: the
    whole header, and a totalsize no larger than the file.  (What lies
    inside is the wrapper's to judge.)"""
    if len(blob) < FDT_HEADER_SIZE:
        raise DeviceTreeError(f"{name}: {len(blob)} bytes, shorter than the "
                              f"{FDT_HEADER_SIZE}-byte header")
    total = _u32(blob, 4)
    if _u32(blob, 0) == FDT_MAGIC and total > len(blob):
        raise DeviceTreeError(f"{name}: header totalsize 0x{total:x} is larger than "
                              f"the file's 0x{len(blob):x} bytes")


class DeviceTree:
    """A tree read with pylibfdt, after check_structure() has passed: pylibfdt
    trusts the header and reads past a buffer whose header lies."""

    def __init__(self, blob: bytes, name: str = "device tree"):
        self.name = name
        self.blob = bytes(blob)
        check_structure(self.blob, name)
        try:
            self.fdt = libfdt.Fdt(bytearray(self.blob))
        except libfdt.FdtException as e:
            raise DeviceTreeError(f"{name}: not a valid device tree ({e})") from None

    def check_structure(self) -> None:
        """The full structural check (check_structure()) of this tree."""
        check_structure(self.blob, self.name)

    def _offset(self, path: str) -> int | None:
        try:
            return self.fdt.path_offset(path)
        except libfdt.FdtException:
            return None

    def prop(self, path: str, name: str) -> bytes | None:
        node = self._offset(path)
        if node is None:
            return None
        try:
            return bytes(self.fdt.getprop(node, name))
        except libfdt.FdtException:
            return None

    def string(self, path: str, name: str) -> str | None:
        raw = self.prop(path, name)
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace") if raw is not None else None

    def _node_cells(self, node: int) -> tuple[int, int]:
        def get(name: str, default: int) -> int:
            try:
                return int.from_bytes(self.fdt.getprop(node, name), "big")
            except libfdt.FdtException:
                return default
        return get("#address-cells", 2), get("#size-cells", 1)

    def memory(self) -> list[tuple[int, int]]:
        """Every (base, size) in the /memory nodes, in tree order.

        A block of size 0 describes no memory and is left out: the one
        rule for empty blocks, as the wrapper and the model read them
        (docs/kexec.md), so an empty block at 0 is never taken for the
        real-mode area."""
        ac, sc = self._node_cells(0)
        if not (1 <= ac <= 2 and 1 <= sc <= 2):
            raise DeviceTreeError(f"{self.name}: root #address-cells {ac} / "
                                  f"#size-cells {sc} not supported")
        out: list[tuple[int, int]] = []
        for node in self._memory_nodes():
            reg = self._reg(node)
            stride = 4 * (ac + sc)
            for i in range(0, len(reg) - stride + 1, stride):
                base, size = _cells(reg[i:], ac), _cells(reg[i + 4 * ac:], sc)
                if size > 0:
                    out.append((base, size))
        return out

    def _memory_nodes(self) -> list[int]:
        """Offsets of the root's memory nodes: device_type exactly
        "memory" and its NUL (docs/kexec.md step 1: not a string list
        beginning so, not six bytes without the NUL), or named memory /
        memory@..."""
        out = []
        node = self.fdt.first_subnode(0, [libfdt.NOTFOUND])
        while node >= 0:
            name = self.fdt.get_name(node)
            try:
                dtype = bytes(self.fdt.getprop(node, "device_type"))
            except libfdt.FdtException:
                dtype = b""
            if dtype == b"memory\0" or name == "memory" or name.startswith("memory@"):
                out.append(node)
            node = self.fdt.next_subnode(node, [libfdt.NOTFOUND])
        return out

    def memory_is_placeholder(self) -> bool:
        """/memory is there but describes nothing (no reg, or only empty
        blocks): a board tree left for the boot loader to fill in, as many
        of Linux's .dts files are.  A reg with a part of an entry over is
        malformed, not empty: that is the wrapper's to answer."""
        nodes = self._memory_nodes()
        if not nodes or self.memory():
            return False
        ac, sc = self._node_cells(0)
        return all(len(self._reg(node)) % (4 * (ac + sc)) == 0 for node in nodes)

    def _reg(self, node: int) -> bytes:
        try:
            return bytes(self.fdt.getprop(node, "reg"))
        except libfdt.FdtException:
            return b""

    def with_memory(self, size: int) -> bytes:
        """A copy whose memory is one block [0, size): every memory node
        replaced, as U-Boot fills in a board tree."""
        ac, sc = self._node_cells(0)
        if not (1 <= ac <= 2 and 1 <= sc <= 2):
            raise DeviceTreeError(f"{self.name}: root #address-cells {ac} / "
                                  f"#size-cells {sc} not supported")
        if size <= 0 or size >= 1 << (32 * sc):
            raise DeviceTreeError(f"{self.name}: --memory 0x{size:x} does not fit the "
                                  f"root's #size-cells = <{sc}>")
        fdt = libfdt.Fdt(bytearray(self.blob))
        fdt.resize(len(self.blob) + 256)
        for node in reversed(self._memory_nodes()):   # later offsets first
            fdt.del_node(node)
        node = fdt.add_subnode(0, "memory@0")
        fdt.setprop_str(node, "device_type", "memory")
        fdt.setprop(node, "reg", (0).to_bytes(4 * ac, "big") + size.to_bytes(4 * sc, "big"))
        fdt.pack()
        return bytes(fdt.as_bytearray())

    def with_uart(self, address: int) -> bytes:
        """A copy with an ns16550 at address (a root node, as real trees
        write one: device_type "serial", compatible, reg, clock-frequency)
        and /chosen's stdout-path pointing at it."""
        ac, sc = self._node_cells(0)
        if not (1 <= ac <= 2 and 1 <= sc <= 2) or address >= 1 << (32 * ac):
            raise DeviceTreeError(f"{self.name}: cannot add a UART at 0x{address:x} with "
                                  f"root #address-cells {ac} / #size-cells {sc}")
        fdt = libfdt.Fdt(bytearray(self.blob))
        fdt.resize(len(self.blob) + 512)
        name = f"serial@{address:x}"
        node = fdt.add_subnode(0, name)
        fdt.setprop_str(node, "device_type", "serial")
        fdt.setprop_str(node, "compatible", "ns16550")
        fdt.setprop(node, "reg", address.to_bytes(4 * ac, "big") + (0x100).to_bytes(4 * sc, "big"))
        fdt.setprop_u32(node, "clock-frequency", 1843200)
        try:
            chosen = fdt.path_offset("/chosen")
        except libfdt.FdtException:
            chosen = fdt.add_subnode(0, "chosen")
        for prop in ("linux,stdout-path", "stdout-path"):
            fdt.setprop_str(chosen, prop, "/" + name)
        fdt.pack()
        return bytes(fdt.as_bytearray())

    def with_bootargs(self, text: str) -> bytes:
        """A copy with /chosen bootargs set to text.  A property is bytes:
        text that came from bytes which are not UTF-8 (a command line's
        argument, decoded with surrogateescape) goes in as those bytes."""
        data = text.encode("utf-8", "surrogateescape")
        if b"\0" in data:
            raise DeviceTreeError(f"{self.name}: the command line (bootargs) holds a NUL "
                                  f"byte at {data.index(0)}: a property string ends there")
        fdt = libfdt.Fdt(bytearray(self.blob))
        fdt.resize(len(self.blob) + len(data) + 256)
        try:
            chosen = fdt.path_offset("/chosen")
        except libfdt.FdtException:
            chosen = fdt.add_subnode(0, "chosen")
        fdt.setprop(chosen, "bootargs", data + b"\0")
        fdt.pack()
        return bytes(fdt.as_bytearray())

    def rma_size(self) -> int | None:
        """The size of the first memory block at address 0 (the real-mode
        area on pseries), None when there is none."""
        return next((size for base, size in self.memory() if base == 0), None)

    def reserves(self) -> list[tuple[int, int]]:
        """The memory reserve map (reserve_map(): up to the (0, 0) entry)."""
        return reserve_map(self.blob)

    def chosen_initrd(self) -> tuple[int, int] | None:
        s = self.prop("/chosen", "linux,initrd-start")
        e = self.prop("/chosen", "linux,initrd-end")
        if s is None or e is None:
            return None
        return int.from_bytes(s, "big"), int.from_bytes(e, "big")

    def console(self) -> ConsoleNode | None:
        """The device /chosen's stdout-path names, if bwemu can emulate it."""
        path = (self.string("/chosen", "linux,stdout-path")
                or self.string("/chosen", "stdout-path"))
        if not path:
            return None
        path = path.split(":", 1)[0]
        if not path.startswith("/"):
            alias = self.string("/aliases", path.split("/", 1)[0])
            if alias is None:
                return None
            path = alias + path[len(path.split("/", 1)[0]):]
        node = self._offset(path)
        if node is None:
            return None
        compat = (self.prop(path, "compatible") or b"").split(b"\0")
        reg = self.prop(path, "reg") or b""
        if len(reg) < 4:
            return None      # no address: nothing to emulate (the wrapper finds none either)
        if b"hvterm1" in compat:
            return ConsoleNode("hvc", path, _cells(reg, 1))
        if any(c in compat for c in (b"ns16550", b"ns16550a", b"ns16450", b"ns8250")):
            address = self._translate(path, reg)
            shift = self._small(path, "reg-shift", 0, MAX_REG_SHIFT)
            width = self._small(path, "reg-io-width", 1, 8)
            return ConsoleNode("uart", path, address, shift, width)
        return None

    def _small(self, path: str, name: str, default: int, top: int) -> int:
        """A one-cell property bounded to [0, top]."""
        raw = self.prop(path, name)
        if raw is None:
            return default
        value = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
        if not 0 <= value <= top:
            raise DeviceTreeError(f"{self.name}: {path} {name} = {_show(raw)}: "
                                  f"bwemu emulates 0..{top}")
        return value

    def _translate(self, path: str, reg: bytes) -> int:
        """A node's first reg address in CPU terms, through its buses' ranges."""
        parts = [p for p in path.split("/") if p]
        parents = ["/" + "/".join(parts[:i]) for i in range(len(parts))]
        ac, _ = self._node_cells(self.fdt.path_offset(parents[-1]))
        addr = _cells(reg, ac)
        for bus in reversed(parents[1:]):
            ranges = self.prop(bus, "ranges")
            child_ac, child_sc = self._node_cells(self.fdt.path_offset(bus))
            parent = bus.rsplit("/", 1)[0] or "/"
            parent_ac, _ = self._node_cells(self.fdt.path_offset(parent))
            if not ranges:
                continue
            stride = 4 * (child_ac + parent_ac + child_sc)
            if stride == 0:
                raise DeviceTreeError(f"{self.name}: {bus} has ranges but all its cell "
                                      f"counts are 0")
            for i in range(0, len(ranges) - stride + 1, stride):
                cb = _cells(ranges[i:], child_ac)
                pb = _cells(ranges[i + 4 * child_ac:], parent_ac)
                size = _cells(ranges[i + 4 * (child_ac + parent_ac):], child_sc)
                if cb <= addr < cb + size:
                    addr = addr - cb + pb
                    break
        if addr >= 1 << 64:
            raise DeviceTreeError(f"{self.name}: {path} translates to 0x{addr:x}, past 2^64")
        return addr

    def with_initrd(self, start: int, end: int) -> bytes:
        """A copy with /chosen naming the initrd, as kexec-tools writes it."""
        fdt = libfdt.Fdt(bytearray(self.blob))
        fdt.resize(len(self.blob) + 256)
        try:
            chosen = fdt.path_offset("/chosen")
        except libfdt.FdtException:
            chosen = fdt.add_subnode(0, "chosen")
        fdt.setprop_u64(chosen, "linux,initrd-start", start)
        fdt.setprop_u64(chosen, "linux,initrd-end", end)
        fdt.pack()
        return bytes(fdt.as_bytearray())
