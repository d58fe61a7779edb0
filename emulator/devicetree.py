"""Reading device trees on the Python side, with pylibfdt.

Used to size the machine's RAM, find the console device, and decode the
final tree the wrapper hands to the kernel.  Errors name the tree and what
is wrong with it, never a bare libfdt exception.
"""

from __future__ import annotations

from dataclasses import dataclass

import libfdt


class DeviceTreeError(Exception):
    """A device tree bwemu cannot use; the text says which and why."""


@dataclass(frozen=True)
class ConsoleNode:
    kind: str        # "uart" or "hvc"
    path: str
    address: int     # UART base, or vty terminal number
    reg_shift: int = 0
    io_width: int = 1


def _cells(data: bytes, n: int) -> int:
    return int.from_bytes(data[:4 * n], "big")


class DeviceTree:
    def __init__(self, blob: bytes, name: str = "device tree"):
        self.name = name
        self.blob = bytes(blob)
        try:
            self.fdt = libfdt.Fdt(bytearray(self.blob))
        except libfdt.FdtException as e:
            raise DeviceTreeError(f"{name}: not a valid device tree ({e})") from None

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
        """Every (base, size) in the /memory nodes, in tree order."""
        ac, sc = self._node_cells(0)
        if not (1 <= ac <= 2 and 1 <= sc <= 2):
            raise DeviceTreeError(f"{self.name}: root #address-cells {ac} / "
                                  f"#size-cells {sc} not supported")
        out: list[tuple[int, int]] = []
        node = self.fdt.first_subnode(0, [libfdt.NOTFOUND])
        while node >= 0:
            name = self.fdt.get_name(node)
            try:
                dtype = bytes(self.fdt.getprop(node, "device_type")).rstrip(b"\0")
            except libfdt.FdtException:
                dtype = b""
            if dtype == b"memory" or name == "memory" or name.startswith("memory@"):
                try:
                    reg = bytes(self.fdt.getprop(node, "reg"))
                except libfdt.FdtException:
                    reg = b""
                stride = 4 * (ac + sc)
                for i in range(0, len(reg) - stride + 1, stride):
                    out.append((_cells(reg[i:], ac), _cells(reg[i + 4 * ac:], sc)))
            node = self.fdt.next_subnode(node, [libfdt.NOTFOUND])
        return out

    def reserves(self) -> list[tuple[int, int]]:
        return [tuple(self.fdt.get_mem_rsv(i)) for i in range(self.fdt.num_mem_rsv())]

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
        if b"hvterm1" in compat:
            return ConsoleNode("hvc", path, _cells(reg, 1))
        if any(c in compat for c in (b"ns16550", b"ns16550a", b"ns16450", b"ns8250")):
            address = self._translate(path, reg)
            shift = self.prop(path, "reg-shift")
            width = self.prop(path, "reg-io-width")
            return ConsoleNode("uart", path, address,
                               int.from_bytes(shift, "big") if shift else 0,
                               int.from_bytes(width, "big") if width else 1)
        return None

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
            for i in range(0, len(ranges) - stride + 1, stride):
                cb = _cells(ranges[i:], child_ac)
                pb = _cells(ranges[i + 4 * child_ac:], parent_ac)
                size = _cells(ranges[i + 4 * (child_ac + parent_ac):], child_sc)
                if cb <= addr < cb + size:
                    addr = addr - cb + pb
                    break
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
