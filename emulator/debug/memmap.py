"""The memory map of a boot, before it and at its end, side by side: as an
SVG picture (written directly: rectangles and text) and as compact text.

Blocks: RAM, the wrapper (or image), the input tree, the chain-loader's
initrd and every reserve-map entry before the boot; at its end the heap,
the kernel's image where the wrapper placed it, the kernel's run-time
footprint [0, size) (a ppc64 kernel copies itself to 0 and clears its bss
there), the final tree, the initrd as handed on, and every store that hit
a protected region.

The vertical axis is cut at every block boundary, in both columns at once,
so the two columns line up.  A piece that holds some block gets a height
that grows with the log of its size; a piece that is plain RAM larger than
GAP is drawn short and marked with a break, so a 64 KiB tree stays visible
beside gigabytes of RAM.  Blocks that overlap go in lanes side by side;
overlaps between blocks that must not overlap are what the picture is for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Any

#: Plain RAM larger than this is drawn shortened, with a break mark.
GAP = 1 << 20

# Kinds, and their colours in the SVG.
COLOURS = {
    "ram": "#eef2f5", "image": "#7aa6d6", "tree": "#8fcf8f", "initrd": "#f2c46d",
    "reserve": "#b9a6d9", "heap": "#d8d8d8", "kernel": "#e59a7a",
    "footprint": "#e59a7a", "overwrite": "#d62728",
}


@dataclass(frozen=True)
class Block:
    name: str
    start: int
    end: int
    kind: str          # a key of COLOURS

    @property
    def size(self) -> int:
        return self.end - self.start

    def label(self) -> str:
        return f"{self.name} 0x{self.start:x}..0x{self.end:x}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "start": self.start, "end": self.end, "kind": self.kind}


@dataclass
class MemoryMap:
    """The two columns: `before` the first instruction, `after` the run."""
    before: list[Block] = field(default_factory=list)
    after: list[Block] = field(default_factory=list)
    title: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "before": [b.to_json() for b in self.before],
                "after": [b.to_json() for b in self.after]}

    def conflicts(self) -> list[str]:
        """At the end: where the kernel's footprint or an overwrite lies over
        something still needed (the initrd, a tree handed on, a reserve)."""
        out = []
        needed = [b for b in self.after if b.kind in ("initrd", "reserve")
                  or b.name == "final tree"]
        for x in self.after:
            if x.kind not in ("footprint", "overwrite"):
                continue
            for y in needed:
                if x.start < y.end and y.start < x.end:
                    # an overwrite is named for the region it hit: say what
                    # it did, not that the region overlaps itself
                    out.append(f"stores at 0x{x.start:x}..0x{x.end:x} overwrote {y.label()}"
                               if x.kind == "overwrite" else
                               f"{x.label()} overlaps {y.label()}")
        return out

    def overlaps(self, a: str, b: str) -> bool:
        """Whether blocks named a and b overlap in the `after` column."""
        xs = [x for x in self.after if x.name == a]
        ys = [y for y in self.after if y.name == b]
        return any(x.start < y.end and y.start < x.end for x in xs for y in ys)


def size_text(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:.0f} {unit}" if v.is_integer() else f"{v:.1f} {unit}"
    return f"{n} B"


# --- the vertical axis --------------------------------------------------------

@dataclass(frozen=True)
class Piece:
    start: int
    end: int
    y: float
    height: float
    shortened: bool


def _pieces(m: MemoryMap, top: float) -> list[Piece]:
    blocks = m.before + m.after
    cuts = sorted({b.start for b in blocks} | {b.end for b in blocks})
    out: list[Piece] = []
    y = top
    for s, e in zip(cuts, cuts[1:], strict=False):
        if e <= s:
            continue
        covered = any(b.start < e and s < b.end for b in blocks if b.kind != "ram")
        size = e - s
        if not covered and size > GAP:
            h, short = 34.0, True
        else:
            h, short = 26.0 + 6.0 * max(0.0, math.log2(max(size, 1) / 4096)), False
            h = min(h, 110.0)
        out.append(Piece(s, e, y, h, short))
        y += h
    return out


def _y(pieces: list[Piece], addr: int) -> float:
    for p in pieces:
        if p.start <= addr <= p.end:
            if p.end == p.start:
                return p.y
            return p.y + p.height * (addr - p.start) / (p.end - p.start) \
                if not p.shortened else (p.y if addr == p.start else p.y + p.height)
    return pieces[-1].y + pieces[-1].height if pieces else 0.0


def _lanes(blocks: list[Block]) -> list[tuple[Block, int, int]]:
    """(block, lane, lanes in its group): overlapping blocks side by side."""
    order = sorted(blocks, key=lambda b: (b.start, -b.size))
    lane_end: list[int] = []
    placed: list[tuple[Block, int]] = []
    for b in order:
        for i, end in enumerate(lane_end):
            if end <= b.start:
                lane_end[i] = b.end
                placed.append((b, i))
                break
        else:
            lane_end.append(b.end)
            placed.append((b, len(lane_end) - 1))
    n = max(1, len(lane_end))
    return [(b, lane, n) for b, lane in placed]


# --- SVG ----------------------------------------------------------------------

COLUMN_W = 430.0
AXIS_W = 150.0
GUTTER = 40.0
TOP = 56.0


def to_svg(m: MemoryMap) -> str:
    """The map as a standalone SVG document."""
    pieces = _pieces(m, TOP)
    notes = [f"overlap: {c}" for c in m.conflicts()]
    notes.append(f"Heights grow with the log of a piece's size; plain RAM over "
                 f"{size_text(GAP)} is drawn shortened (zig-zag, ≈).")
    bottom = pieces[-1].y + pieces[-1].height if pieces else TOP
    height = bottom + 30 + 14 * len(notes)
    width = AXIS_W + 2 * COLUMN_W + GUTTER + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
           f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
           f'font-family="monospace" font-size="10">',
           f'<title>{escape(m.title or "memory map")}</title>',
           f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="white"/>',
           f'<text x="10" y="18" font-size="13" font-weight="bold">'
           f'{escape(m.title or "memory map")}</text>']
    # The address axis: every cut, and the breaks.
    out.append('<g class="axis">')
    for p in pieces:
        out.append(f'<text x="{AXIS_W - 8:.0f}" y="{p.y + 4:.1f}" text-anchor="end" '
                   f'class="address">0x{p.start:x}</text>')
        out.append(f'<line x1="{AXIS_W - 4:.0f}" y1="{p.y:.1f}" '
                   f'x2="{AXIS_W + 2 * COLUMN_W + GUTTER:.0f}" y2="{p.y:.1f}" '
                   f'stroke="#ccc" stroke-width="0.5"/>')
        if p.shortened:
            mid = p.y + p.height / 2
            out.append(f'<g class="gap" data-start="0x{p.start:x}" data-end="0x{p.end:x}">'
                       f'<text x="{AXIS_W - 8:.0f}" y="{mid + 4:.1f}" text-anchor="end" '
                       f'fill="#888">≈ {escape(size_text(p.end - p.start))} '
                       f'(shortened)</text></g>')
    if pieces:
        last = pieces[-1]
        out.append(f'<text x="{AXIS_W - 8:.0f}" y="{last.y + last.height + 4:.1f}" '
                   f'text-anchor="end" class="address">0x{last.end:x}</text>')
    out.append("</g>")
    for col, (title, blocks) in enumerate((("before the boot", m.before),
                                           ("at the end", m.after))):
        x0 = AXIS_W + col * (COLUMN_W + GUTTER)
        out.append(f'<g class="column" data-column="{"before" if col == 0 else "after"}">')
        out.append(f'<text x="{x0 + COLUMN_W / 2:.0f}" y="{TOP - 10:.0f}" '
                   f'text-anchor="middle" font-size="12" font-weight="bold">{title}</text>')
        ram = [b for b in blocks if b.kind == "ram"]
        for b in ram:
            out.append(_rect(b, x0, COLUMN_W, pieces, 0.0))
        for p in pieces:
            if p.shortened and any(r.start <= p.start and p.end <= r.end for r in ram):
                out.append(_break(x0, p))
        others = [b for b in blocks if b.kind != "ram"]
        inner = COLUMN_W - 8
        for b, lane, n in _lanes(others):
            w = inner / n
            out.append(_rect(b, x0 + 4 + lane * w, w - 2, pieces, 0.9))
        out.append("</g>")
    out.append('<g class="notes">')
    for i, note in enumerate(notes):
        colour = "#d62728" if note.startswith("overlap") else "#555"
        out.append(f'<text x="10" y="{bottom + 30 + 14 * i:.0f}" fill="{colour}" '
                   f'class="note">{escape(note)}</text>')
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _rect(b: Block, x: float, w: float, pieces: list[Piece], opacity: float) -> str:
    y0, y1 = _y(pieces, b.start), _y(pieces, b.end)
    h = max(y1 - y0, 3.0)
    colour = COLOURS.get(b.kind, "#999")
    extra = ""
    if b.kind == "footprint":
        extra = ' fill-opacity="0.35" stroke-dasharray="5,3"'
    elif opacity:
        extra = f' fill-opacity="{opacity}"'
    chars = max(8, int((w - 6) / 6.1))       # monospace 10 px: about 6 px a character
    lines = [*_wrap(b.name, chars), f"0x{b.start:x}..0x{b.end:x}", size_text(b.size)]
    text_y = y0 + 12
    texts = []
    for i, line in enumerate(lines):
        if i > 1 and text_y + 11 * i > y0 + h - 1:
            break
        texts.append(f'<text x="{x + 4:.1f}" y="{text_y + 11 * i:.1f}" '
                     f'class="label">{escape(line)}</text>')
    if b.kind == "ram":
        texts = [f'<text x="{x + w - 4:.1f}" y="{text_y:.1f}" text-anchor="end" '
                 f'fill="#777" class="label">RAM 0x{b.start:x}..0x{b.end:x}</text>']
    return (f'<g class="block" data-kind="{b.kind}" data-name="{escape(b.name)}" '
            f'data-start="0x{b.start:x}" data-end="0x{b.end:x}">'
            f'<title>{escape(b.label())} ({size_text(b.size)})</title>'
            f'<rect x="{x:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'fill="{colour}" stroke="#333" stroke-width="0.6"{extra}/>'
            + "".join(texts) + "</g>")


def _wrap(text: str, width: int) -> list[str]:
    """text in lines of at most width characters, broken at spaces."""
    out: list[str] = []
    line = ""
    for word in text.split(" "):
        while len(word) > width:
            if line:
                out.append(line)
                line = ""
            out.append(word[:width])
            word = word[width:]
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        out.append(line)
    return out


def _break(x: float, p: Piece) -> str:
    """A zig-zag across the column: this piece of RAM is drawn shortened."""
    mid = p.y + p.height / 2
    pts = []
    steps = 24
    for i in range(steps + 1):
        pts.append(f"{x + COLUMN_W * i / steps:.1f},{mid + (4 if i % 2 else -4):.1f}")
    return (f'<polyline class="break" points="{" ".join(pts)}" fill="none" '
            f'stroke="#999" stroke-width="1"/>')


# --- text -----------------------------------------------------------------------

def to_text(m: MemoryMap) -> list[str]:
    """One line per piece of the axis: what lies there before and at the end."""
    pieces = _pieces(m, 0.0)
    out = [f"  {'range':<37s} {'before the boot':<34s} at the end"]
    for p in pieces:
        def names(blocks: list[Block], p: Piece = p) -> str:
            hit = [b.name for b in blocks
                   if b.kind != "ram" and b.start < p.end and p.start < b.end]
            if not hit:
                ram = any(b.start <= p.start and p.end <= b.end
                          for b in blocks if b.kind == "ram")
                return ("RAM" if ram else "-") + (" (shortened)" if p.shortened else "")
            return ", ".join(hit)
        span = f"0x{p.start:x}..0x{p.end:x} ({size_text(p.end - p.start)})"
        out.append(f"  {span:<37s} {names(m.before):<34s} {names(m.after)}")
    out += [f"  OVERLAP: {c}" for c in m.conflicts()]
    return out


__all__ = ["Block", "GAP", "MemoryMap", "size_text", "to_svg", "to_text"]
