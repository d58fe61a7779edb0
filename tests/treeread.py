"""Reading a device tree in tests, with pylibfdt only (independent of
emulator/devicetree.py, which is under test)."""

from __future__ import annotations

import libfdt


def subnodes(fdt: libfdt.Fdt, node: int):
    child = fdt.first_subnode(node, [libfdt.NOTFOUND])
    while child >= 0:
        yield child
        child = fdt.next_subnode(child, [libfdt.NOTFOUND])


def properties(fdt: libfdt.Fdt, node: int) -> dict[str, bytes]:
    out = {}
    off = fdt.first_property_offset(node, [libfdt.NOTFOUND])
    while off >= 0:
        prop = fdt.get_property_by_offset(off)
        out[prop.name] = bytes(prop)
        off = fdt.next_property_offset(off, [libfdt.NOTFOUND])
    return out


def tree_contents(dtb: bytes) -> dict[str, dict[str, bytes]]:
    """Every node's path mapped to its properties."""
    fdt = libfdt.Fdt(bytearray(dtb))
    out: dict[str, dict[str, bytes]] = {}

    def walk(node: int, path: str) -> None:
        out[path] = properties(fdt, node)
        for child in subnodes(fdt, node):
            walk(child, path.rstrip("/") + "/" + fdt.get_name(child))
    walk(0, "/")
    return out
