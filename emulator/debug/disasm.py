"""PowerPC disassembly with capstone, in the image's own mode: 64-bit
big-endian, or 32-bit big-endian for an ELF32 image (Linux builds its
big-endian boot wrapper -m32)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..guest.addresses import LoadedImage


def image_bits(image: LoadedImage) -> int:
    """32 or 64: the ELF class of the image (ElfImage.bits; 64 without it)."""
    bits = getattr(image.elf, "bits", 64)
    return 32 if bits == 32 else 64


@dataclass(frozen=True)
class Instruction:
    pc: int
    word: int
    text: str            # "mflr r0", ".long 0x0" where capstone knows no instruction

    def to_json(self) -> dict[str, Any]:
        return {"pc": self.pc, "word": self.word, "text": self.text}


class Disassembler:
    """One capstone handle for one mode; texts are cached per (pc, word)."""

    def __init__(self, bits: int = 64) -> None:
        self.bits = bits
        self._cache: dict[tuple[int, int], str] = {}

    @cached_property
    def _cs(self) -> Any:
        # capstone is loaded at the first instruction shown: a boot that
        # passes shows none and never pays for the import.
        import capstone  # type: ignore[import-untyped]   # (no type information)
        mode = capstone.CS_MODE_64 if self.bits == 64 else capstone.CS_MODE_32
        return capstone.Cs(capstone.CS_ARCH_PPC, mode | capstone.CS_MODE_BIG_ENDIAN)

    def text(self, pc: int, word: int) -> str:
        key = (pc, word)
        hit = self._cache.get(key)
        if hit is None:
            hit = f".long 0x{word:x}"
            for _, _, mnemonic, ops in self._cs.disasm_lite(word.to_bytes(4, "big"), pc, 1):
                hit = f"{mnemonic} {ops}".strip()
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def instruction(self, pc: int, word: int) -> Instruction:
        return Instruction(pc, word, self.text(pc, word))

    def block(self, pc: int, code: bytes) -> list[Instruction]:
        """Every whole word of code, from pc on."""
        return [self.instruction(pc + off, int.from_bytes(code[off:off + 4], "big"))
                for off in range(0, len(code) - 3, 4)]


__all__ = ["Disassembler", "Instruction", "image_bits"]
