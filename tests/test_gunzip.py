"""firmware/inflate.c against Python's gzip/zlib, run on the host under ASan/UBSan.

The driver (firmware/host/gunzip_driver.c) writes output bytes [skip, skip+len)
to stdout, or exits with the positive GUNZIP_ERR_* code.  Streams zlib cannot
produce (maximum distance, invalid symbols, bad code lengths...) are built
here bit by bit from RFC 1951's fixed code and block formats.
"""

from __future__ import annotations

import gzip
import random
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostc import FIRMWARE, build_host_tool

# firmware/include/gunzip.h
TRUNCATED, BADHEADER, BADBLOCK, BADSTORED, BADCODES = 1, 2, 3, 4, 5
BADSYMBOL, BADDISTANCE, BADCRC, BADLENGTH, SHORT = 6, 7, 8, 9, 10

SANITIZER_MARKS = ("AddressSanitizer", "runtime error", "UndefinedBehaviorSanitizer")


@pytest.fixture(scope="module")
def driver() -> Path:
    return build_host_tool("gunzip_driver", ["inflate.c"])


class Runner:
    def __init__(self, exe: Path, workdir: Path):
        self.exe = exe
        self.path = workdir / "in.gz"

    def raw(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.exe), *args], capture_output=True, timeout=30)
        err = proc.stderr.decode(errors="replace")
        assert not any(m in err for m in SANITIZER_MARKS), err
        assert proc.returncode >= 0, f"killed by signal {-proc.returncode}"
        return proc

    def range(self, stream: bytes, skip: int, length: int) -> tuple[int, bytes]:
        self.path.write_bytes(stream)
        proc = self.raw(str(self.path), str(skip), str(length))
        return proc.returncode, proc.stdout

    def whole(self, stream: bytes, length: int) -> tuple[int, bytes]:
        return self.range(stream, 0, length)

    def verified(self, stream: bytes, skip: int, length: int) -> tuple[int, bytes]:
        """gunzip_range_verified(): the whole stream decoded and checked."""
        self.path.write_bytes(stream)
        proc = self.raw("--verified", str(self.path), str(skip), str(length))
        return proc.returncode, proc.stdout

    def batch(self, requests: list[tuple[bytes, int, int]]) -> list[tuple[int, bytes]]:
        """Many (stream, skip, len) requests in one driver process."""
        lines = []
        for i, (stream, skip, length) in enumerate(requests):
            p = self.path.with_name(f"b{i}.gz")
            p.write_bytes(stream)
            lines.append(f"{p} {skip} {length}\n")
        proc = subprocess.run([str(self.exe), "--batch"], input="".join(lines).encode(),
                              capture_output=True, timeout=120)
        err = proc.stderr.decode(errors="replace")
        assert not any(m in err for m in SANITIZER_MARKS), err
        assert proc.returncode == 0, err
        out, results = proc.stdout, []
        while out:
            head, out = out.split(b"\n", 1)
            rc, n = map(int, head.split())
            results.append((rc, out[:n]))
            out = out[n:]
        assert len(results) == len(requests)
        return results


@pytest.fixture
def run(driver, tmp_path) -> Runner:
    return Runner(driver, tmp_path)


# --- inputs ---------------------------------------------------------------

def text_data(n: int) -> bytes:
    src = (FIRMWARE / "inflate.c").read_bytes()
    return (src * (n // len(src) + 1))[:n]


def repetitive_data(n: int) -> bytes:
    return (b"abcabcabd" * (n // 9 + 1))[:n]


def random_data(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def mixed_data(n: int) -> bytes:
    """Alternating incompressible and text runs: stored and Huffman blocks."""
    out = bytearray()
    rng = random.Random(7)
    while len(out) < n:
        out += rng.randbytes(rng.randrange(1000, 30000))
        out += text_data(rng.randrange(1000, 30000))
    return bytes(out[:n])


INPUTS = {
    "empty": b"",
    "one-byte": b"x",
    "random-3000": random_data(3000),
    "repetitive-50000": repetitive_data(50000),
    "zeros-100000": bytes(100000),
    "text-20000": text_data(20000),
    "mixed-200000": mixed_data(200000),
}


# --- hand-built DEFLATE streams (RFC 1951) --------------------------------

LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
            35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
LEN_EXTRA = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0]
DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
             257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
             8193, 12289, 16385, 24577]
DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
              7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]


class Bits:
    """Bit writer: fields least significant bit first, Huffman codes MSB first."""

    def __init__(self):
        self.bits: list[int] = []

    def put(self, value: int, n: int) -> Bits:
        self.bits += [(value >> i) & 1 for i in range(n)]
        return self

    def code(self, code: int, n: int) -> Bits:
        self.bits += [(code >> i) & 1 for i in reversed(range(n))]
        return self

    def align(self) -> Bits:
        self.bits += [0] * (-len(self.bits) % 8)
        return self

    def raw(self, data: bytes) -> Bits:
        self.align()
        for b in data:
            self.put(b, 8)
        return self

    def getvalue(self) -> bytes:
        self.align()
        return bytes(sum(self.bits[i + k] << k for k in range(8))
                     for i in range(0, len(self.bits), 8))

    # fixed Huffman code, RFC 1951 3.2.6
    def lit(self, sym: int) -> Bits:
        if sym < 144:
            return self.code(0x30 + sym, 8)
        if sym < 256:
            return self.code(0x190 + sym - 144, 9)
        if sym < 280:
            return self.code(sym - 256, 7)
        return self.code(0xC0 + sym - 280, 8)

    def match(self, length: int, dist: int) -> Bits:
        i = max(k for k in range(29) if LEN_BASE[k] <= length)
        self.lit(257 + i).put(length - LEN_BASE[i], LEN_EXTRA[i])
        d = max(k for k in range(30) if DIST_BASE[k] <= dist)
        return self.code(d, 5).put(dist - DIST_BASE[d], DIST_EXTRA[d])


def gzip_wrap(deflate: bytes, data: bytes, header: bytes | None = None) -> bytes:
    if header is None:
        header = bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3])
    return header + deflate + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def fixed_stream(lits_then: list, final: bool = True) -> Bits:
    """A fixed-code block: ints are literals/symbols, (len, dist) tuples matches."""
    b = Bits().put(int(final), 1).put(1, 2)
    for item in lits_then:
        if isinstance(item, tuple):
            b.match(*item)
        else:
            b.lit(item)
    return b


def block_type_of(stream: bytes) -> int:
    """BTYPE of the first block of a plain-header gzip stream."""
    return (stream[10] >> 1) & 3


# --- agreement with Python ------------------------------------------------

@pytest.mark.parametrize("level", [0, 1, 9])
@pytest.mark.parametrize("name", list(INPUTS))
def test_whole_stream_matches_python_gzip(run, name, level):
    data = INPUTS[name]
    stream = gzip.compress(data, compresslevel=level, mtime=0)
    assert run.whole(stream, len(data)) == (0, data)


def test_inputs_cover_stored_fixed_and_dynamic_blocks():
    # the comparison above is only worth something if all block types occur
    assert block_type_of(gzip.compress(b"x", 1)) == 1
    assert block_type_of(gzip.compress(text_data(20000), 9)) == 2
    assert block_type_of(gzip.compress(text_data(20000), 0)) == 0
    assert block_type_of(gzip.compress(random_data(3000), 9)) == 0


def test_partial_windows_of_a_multi_block_stream(run):
    data = INPUTS["mixed-200000"]
    stream = gzip.compress(data, compresslevel=6, mtime=0)
    n = len(data)
    for skip, length in [(0, 1), (0, 64), (1, 1), (65535, 2), (65536, 70000),
                         (n - 1, 1), (n // 2, n - n // 2), (12345, 0), (n, 0)]:
        assert run.range(stream, skip, length) == (0, data[skip:skip + length]), (skip, length)


def test_windows_crossing_flush_block_boundaries(run):
    # Z_FULL_FLUSH ends a block at a known output offset (and resets the
    # history); Z_SYNC_FLUSH adds an empty stored block as well.
    data = text_data(150000)
    cut = [40000, 40001, 90000]
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [co.compress(data[:cut[0]]), co.flush(zlib.Z_FULL_FLUSH),
             co.compress(data[cut[0]:cut[1]]), co.flush(zlib.Z_SYNC_FLUSH),
             co.compress(data[cut[1]:cut[2]]), co.flush(zlib.Z_SYNC_FLUSH),
             co.compress(data[cut[2]:]), co.flush()]
    stream = b"".join(parts)
    assert gzip.decompress(stream) == data
    for b in cut:
        for skip, length in [(b - 1, 2), (b - 300, 600), (b, 1), (b - 1, 1), (0, b),
                             (b, len(data) - b)]:
            assert run.range(stream, skip, length) == (0, data[skip:skip + length]), (skip, length)


def test_back_references_reaching_across_the_whole_window(run):
    # zlib: distances up to 32506 (its own limit); the window start is far
    # behind the requested range.
    rng = random.Random(3)
    head = rng.randbytes(32000)
    data = head + rng.randbytes(400) + head + rng.randbytes(100)
    stream = gzip.compress(data, compresslevel=9, mtime=0)
    assert len(stream) < len(data) - 20000  # the second copy is references
    for skip, length in [(32400, 32000), (40000, 1000), (64399, 2), (32400, 32100)]:
        assert run.range(stream, skip, length) == (0, data[skip:skip + length])


def test_maximum_distance_32768_and_overlapping_copies(run):
    # Hand-built: 32768 literals, a match back the full window, a run-length
    # match (distance 1), and another full-window match, now mid-window.
    rng = random.Random(5)
    head = rng.randbytes(32768)
    items = list(head) + [(258, 32768)]
    data = head + head[:258]
    items += [0x41, (200, 1)]
    data += b"A" * 201
    items += [(10, 32768)]
    data += data[-32768:-32758]
    stream = gzip_wrap(fixed_stream(items + [256]).getvalue(), data)
    assert gzip.decompress(stream) == data  # the hand-built stream is valid
    assert run.whole(stream, len(data)) == (0, data)
    assert run.range(stream, 32760, 300) == (0, data[32760:33060])


def test_empty_stream_and_zero_length_requests(run):
    stream = gzip.compress(b"", mtime=0)
    assert run.whole(stream, 0) == (0, b"")
    assert run.whole(stream, 1)[0] == SHORT
    data = text_data(1000)
    stream = gzip.compress(data, mtime=0)
    assert run.range(stream, 0, 0) == (0, b"")
    assert run.range(stream, 1000, 0) == (0, b"")
    assert run.range(stream, 1001, 0)[0] == SHORT


def test_range_past_the_end_is_short(run):
    data = text_data(5000)
    stream = gzip.compress(data, mtime=0)
    assert run.whole(stream, 5001)[0] == SHORT
    assert run.range(stream, 4990, 11)[0] == SHORT
    assert run.range(stream, 10**12, 5)[0] == SHORT
    # skip + len overflowing 64 bits can never be produced
    assert run.range(stream, 2**64 - 2, 5)[0] == SHORT


def test_gzip_header_fields_are_skipped(run):
    data = text_data(3000)
    body = zlib.compress(data, 9)[2:-4]  # raw deflate
    extra = b"AB\x04\x00wxyz"
    head = (bytes([0x1F, 0x8B, 8, 0x02 | 0x04 | 0x08 | 0x10, 1, 2, 3, 4, 2, 3])
            + struct.pack("<H", len(extra)) + extra + b"vmlinux\0" + b"a comment\0")
    hcrc = struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    stream = gzip_wrap(body, data, head + hcrc)
    assert gzip.decompress(stream) == data
    assert run.whole(stream, len(data)) == (0, data)
    bad = gzip_wrap(body, data, head + struct.pack("<H", (zlib.crc32(head) + 1) & 0xFFFF))
    assert run.whole(bad, len(data))[0] == BADHEADER


@pytest.mark.parametrize("header,code", [
    (b"\x1f\x8c\x08\x00" + bytes(6), BADHEADER),   # magic
    (b"\x1f\x8b\x07\x00" + bytes(6), BADHEADER),   # method other than deflate
    (b"\x1f\x8b\x08\x20" + bytes(6), BADHEADER),   # reserved flag bits
    (b"\x1f\x8b\x08\x40" + bytes(6), BADHEADER),
    (b"\x1f\x8b\x08\x80" + bytes(6), BADHEADER),
    (b"\x1f\x8b\x08\x08" + bytes(6) + b"name-without-end", TRUNCATED),
    (b"\x1f\x8b\x08\x04" + bytes(6) + b"\xff\x00abc", TRUNCATED),  # FEXTRA past the end
])
def test_bad_headers(run, header, code):
    assert run.whole(header, 0)[0] == code


# --- corrupt streams --------------------------------------------------------

SMALL = text_data(400)
SMALL_GZ = gzip.compress(SMALL, compresslevel=9, mtime=0)


def test_truncation_at_every_position_is_reported(run):
    assert block_type_of(SMALL_GZ) == 2
    results = run.batch([(SMALL_GZ[:cut], 0, len(SMALL)) for cut in range(len(SMALL_GZ))])
    assert [rc for rc, _ in results] == [TRUNCATED] * len(SMALL_GZ)


def test_truncation_of_a_stored_stream(run):
    stream = gzip.compress(SMALL[:100], compresslevel=0, mtime=0)
    results = run.batch([(stream[:cut], 0, 100) for cut in range(len(stream))])
    assert [rc for rc, _ in results] == [TRUNCATED] * len(stream)


def test_range_before_a_truncation_still_decodes(run):
    # decoding stops once the range is produced: data lost later is not needed
    data = text_data(100000)
    stream = gzip.compress(data, compresslevel=0, mtime=0)
    assert run.range(stream[:60000], 0, 50000) == (0, data[:50000])
    # also inside one stored block whose end is cut off
    body = Bits().put(1, 1).put(0, 2).raw(struct.pack("<HH", 1000, 0xFFFF ^ 1000) + data[:1000])
    stream = gzip_wrap(body.getvalue(), data[:1000])
    assert run.range(stream[:500], 0, 100) == (0, data[:100])
    assert run.range(stream[:500], 0, 600)[0] == TRUNCATED


def test_flipped_bytes_give_an_error_or_the_same_data(run):
    cases, requests = [], []
    for pos in range(len(SMALL_GZ)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(SMALL_GZ)
            bad[pos] ^= mask
            cases.append((pos, mask))
            requests.append((bytes(bad), 0, len(SMALL)))
    errors = 0
    for (pos, mask), (rc, out) in zip(cases, run.batch(requests), strict=True):
        # FTEXT, MTIME, XFL, OS: informational only
        if 4 <= pos < 10 or (pos, mask) == (3, 0x01):
            assert (rc, out) == (0, SMALL), (pos, mask)
        elif rc == 0:  # e.g. padding bits after the last block
            assert out == SMALL, (pos, mask)
        else:
            assert 1 <= rc <= 10, (pos, mask, rc)
            errors += 1
    assert errors > len(requests) * 0.9


def test_surplus_output_after_the_announced_size_is_an_error(run):
    # A stream that decodes to more than its ISIZE says: asking for ISIZE
    # bytes decodes on to the trailer instead of stopping at ISIZE.
    data = text_data(1000)
    stream = gzip.compress(data, mtime=0)
    lie = stream[:-4] + struct.pack("<I", 999)
    assert run.whole(lie, 999)[0] == BADLENGTH
    # a request that is not "everything" stops early and succeeds
    assert run.whole(lie, 998) == (0, data[:998])


def test_bad_crc_and_bad_isize(run):
    data = text_data(10000)
    stream = bytearray(gzip.compress(data, mtime=0))
    bad_crc = bytes(stream[:-8]) + struct.pack("<I", zlib.crc32(data) ^ 1) + bytes(stream[-4:])
    assert run.whole(bad_crc, len(data))[0] == BADCRC
    # a range that ends before the data does not check the trailer
    assert run.range(bad_crc, 0, 9000) == (0, data[:9000])
    bad_len = bytes(stream[:-4]) + struct.pack("<I", len(data) + 1)
    assert run.whole(bad_len, len(data))[0] == BADLENGTH
    bad_len = bytes(stream[:-4]) + struct.pack("<I", len(data) - 1)
    assert run.whole(bad_len, len(data))[0] == BADLENGTH
    assert run.whole(bad_len, len(data) - 1)[0] == BADLENGTH


def test_a_verified_range_checks_the_whole_trailer(run):
    """The wrapper reads a kernel's segments, which end before the file
    does (section headers, symbols): only gunzip_range_verified() then
    reaches the trailer.  Without it, a stream whose CRC-32 or ISIZE is
    changed read as fine."""
    data = text_data(10000)
    stream = gzip.compress(data, mtime=0)
    crc = zlib.crc32(data)
    bad_crc = stream[:-8] + struct.pack("<I", crc ^ 0x8000_0000) + stream[-4:]
    bad_len = stream[:-4] + struct.pack("<I", len(data) + 0x1_0000)
    for skip, length in [(0, 0), (0, 1024), (4096, 1500), (9999, 1), (0, len(data))]:
        want = data[skip:skip + length]
        assert run.verified(stream, skip, length) == (0, want), (skip, length)
        assert run.range(bad_crc, skip, length) == (0, want) or skip + length == len(data)
        assert run.verified(bad_crc, skip, length)[0] == BADCRC, (skip, length)
        assert run.verified(bad_len, skip, length)[0] == BADLENGTH, (skip, length)
    # padding after the trailer is not part of the stream
    assert run.verified(stream + bytes(16), 100, 200) == (0, data[100:300])
    # the trailer itself cut short
    assert run.verified(stream[:-3], 0, 10)[0] == TRUNCATED
    # a range past the data, from a stream whose trailer is right
    assert run.verified(stream, len(data) - 5, 10)[0] == SHORT


def test_a_stream_that_ends_is_judged_by_its_trailer_before_the_request(run):
    """An ISIZE that claims more data than there is: the request for the
    announced size is refused as a length mismatch (the stream lies), no
    longer as the data ending before the range (SHORT)."""
    data = text_data(3000)
    stream = gzip.compress(data, mtime=0)
    claims_more = stream[:-4] + struct.pack("<I", len(data) + 100)
    assert run.whole(claims_more, len(data) + 100)[0] == BADLENGTH
    assert run.verified(claims_more, 0, len(data) + 100)[0] == BADLENGTH
    # the trailer intact, the request simply too long: SHORT as before
    assert run.whole(stream, len(data) + 100)[0] == SHORT


def test_flipped_data_of_a_stored_stream_fails_only_the_crc(run):
    """A stored block decodes whatever its bytes are: only the CRC can tell
    (fuzz seed 1 case 140 corrupted a kernel the same way, unseen)."""
    data = text_data(5000)
    stream = bytearray(gzip.compress(data, compresslevel=0, mtime=0))
    stream[10 + 5 + 4000] ^= 0x01          # header, block header, data
    assert run.whole(bytes(stream), 1000) == (0, data[:1000])
    assert run.verified(bytes(stream), 0, 1000)[0] == BADCRC
    assert run.whole(bytes(stream), len(data))[0] == BADCRC


def test_crc_checked_when_the_stream_is_followed_by_padding(run):
    # The last four bytes are then not ISIZE: the decoder must still verify.
    data = text_data(10000)
    stream = gzip.compress(data, mtime=0)
    assert run.whole(stream + bytes(16), len(data)) == (0, data)
    bad = stream[:-8] + struct.pack("<I", zlib.crc32(data) ^ 0x100) + stream[-4:]
    assert run.whole(bad + bytes(16), len(data))[0] == BADCRC


def test_reserved_block_type(run):
    assert run.whole(gzip_wrap(Bits().put(1, 1).put(3, 2).getvalue(), b""), 0)[0] == BADBLOCK


def test_stored_block_length_check(run):
    body = Bits().put(1, 1).put(0, 2).raw(struct.pack("<HH", 3, 0xFFFF ^ 4) + b"abc").getvalue()
    assert run.whole(gzip_wrap(body, b"abc"), 3)[0] == BADSTORED
    good = Bits().put(1, 1).put(0, 2).raw(struct.pack("<HH", 3, 0xFFFF ^ 3) + b"abc").getvalue()
    assert run.whole(gzip_wrap(good, b"abc"), 3) == (0, b"abc")


def test_distance_before_start_of_output(run):
    ok = gzip_wrap(fixed_stream([0x61, 0x62, (3, 2), 256]).getvalue(), b"ababa")
    assert run.whole(ok, 5) == (0, b"ababa")
    bad = gzip_wrap(fixed_stream([0x61, 0x62, (3, 3), 256]).getvalue(), b"ab???")
    assert run.whole(bad, 5)[0] == BADDISTANCE


@pytest.mark.parametrize("tail", [
    lambda b: b.lit(286),                # length symbols 286, 287 do not exist
    lambda b: b.lit(287),
    lambda b: b.lit(257).code(30, 5),    # nor distance codes 30, 31
    lambda b: b.lit(257).code(31, 5),
])
def test_invalid_fixed_code_symbols(run, tail):
    b = fixed_stream([0x61, 0x62, 0x63])
    tail(b)
    b.lit(256)
    assert run.whole(gzip_wrap(b.getvalue(), b"abcxyz"), 6)[0] == BADSYMBOL


def dynamic_header(nlit: int, ndist: int, clens: dict[int, int], nclen: int = 19) -> Bits:
    order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    b = Bits().put(1, 1).put(2, 2).put(nlit - 257, 5).put(ndist - 1, 5).put(nclen - 4, 4)
    for sym in order[:nclen]:
        b.put(clens.get(sym, 0), 3)
    return b


def test_dynamic_block_with_bad_code_lengths(run):
    def rc(b: Bits) -> int:
        return run.whole(gzip_wrap(b.getvalue(), b"a"), 1)[0]

    # HLIT 30 means 287 literal/length codes, more than exist
    assert rc(dynamic_header(287, 1, {0: 1, 18: 1})) == BADCODES
    # HDIST 31 means 32 distance codes
    assert rc(dynamic_header(257, 32, {0: 1, 18: 1})) == BADCODES
    # over-subscribed code length code
    assert rc(dynamic_header(257, 1, {s: 1 for s in range(19)})) == BADCODES
    # incomplete code length code
    assert rc(dynamic_header(257, 1, {0: 2, 18: 2})) == BADCODES
    # with {0: len 1 -> code 0, 18: len 1 -> code 1}:
    # repeat-previous (16) with nothing before it
    b = dynamic_header(257, 1, {0: 1, 16: 2, 18: 2})
    b.code(0b10, 2).put(0, 2)
    assert rc(b) == BADCODES
    # zeros running past HLIT + HDIST (258): 138 + 138
    b = dynamic_header(257, 1, {0: 1, 18: 1})
    b.code(1, 1).put(127, 7).code(1, 1).put(127, 7)
    assert rc(b) == BADCODES
    # exactly 258 zeros: valid count, but no end-of-block code
    b = dynamic_header(257, 1, {0: 1, 18: 1})
    b.code(1, 1).put(127, 7).code(1, 1).put(109, 7)
    assert rc(b) == BADCODES
    # input ending inside the code lengths
    b = dynamic_header(257, 1, {0: 1, 18: 1})
    b.code(1, 1).put(127, 7)
    unwrapped = gzip_wrap(b.getvalue(), b"a")[:-8]
    assert run.whole(unwrapped, 1)[0] == TRUNCATED


def test_dynamic_block_with_sparse_codes(run):
    # literal/length code: only 'a' (len 1) and end-of-block (len 1);
    # no distance codes at all (one zero length): allowed, all literals.
    clens = {0: 2, 1: 2, 17: 2, 18: 2}  # codes: 0 -> 00, 1 -> 01, 17 -> 10, 18 -> 11
    b = dynamic_header(257, 1, clens)
    lens = [0] * 258
    lens[0x61] = 1
    lens[256] = 1
    i = 0
    while i < 258:
        if lens[i]:
            b.code(0b01, 2)
            i += 1
            continue
        run_len = 0
        while i + run_len < 258 and not lens[i + run_len] and run_len < 138:
            run_len += 1
        if run_len >= 11:
            b.code(0b11, 2).put(run_len - 11, 7)
        else:
            run_len = 1
            b.code(0b00, 2)
        i += run_len
    body = b.code(0, 1).code(0, 1).code(0, 1).code(1, 1)  # 'aaa', end
    stream = gzip_wrap(body.getvalue(), b"aaa")
    assert gzip.decompress(stream) == b"aaa"
    assert run.whole(stream, 3) == (0, b"aaa")


# --- hypothesis -------------------------------------------------------------

chunks = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.tuples(st.binary(min_size=1, max_size=8), st.integers(1, 2000)).map(lambda t: t[0] * t[1]),
)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(parts=st.lists(chunks, max_size=12), level=st.sampled_from([0, 1, 6, 9]),
       a=st.integers(0, 2**20), b=st.integers(0, 2**20))
def test_random_data_and_windows_match_python(driver, parts, level, a, b):
    data = b"".join(parts)
    n = len(data)
    skip = a % (n + 3)
    length = b % (n + 3 - skip)  # skip + length <= n + 2: some ranges are too long
    stream = gzip.compress(data, compresslevel=level, mtime=0)
    with tempfile.TemporaryDirectory() as d:
        rc, out = Runner(driver, Path(d)).range(stream, skip, length)
    if skip + length <= n:
        assert (rc, out) == (0, data[skip:skip + length])
    else:
        assert rc == SHORT


# --- the other entry points -------------------------------------------------

def test_gunzip_size_reads_isize(run, tmp_path):
    data = text_data(12345)
    p = tmp_path / "s.gz"
    p.write_bytes(gzip.compress(data))
    assert run.raw("--size", str(p)).stdout == b"12345\n"
    p.write_bytes(gzip.compress(b"")[:17])
    assert run.raw("--size", str(p)).returncode == TRUNCATED
    p.write_bytes(b"\x1f\x8c" + bytes(30))
    assert run.raw("--size", str(p)).returncode == BADHEADER


def test_is_gzip(run, tmp_path):
    p = tmp_path / "f"
    for content, want in [(b"\x1f\x8b", b"1\n"), (b"\x1f\x8b\x08", b"1\n"),
                          (b"\x1f", b"0\n"), (b"", b"0\n"), (b"\x8b\x1f", b"0\n")]:
        p.write_bytes(content)
        assert run.raw("--is-gzip", str(p)).stdout == want, content


def test_strerror_has_distinct_text_for_each_code(run):
    texts = [run.raw("--strerror", str(-c)).stdout for c in range(1, 11)]
    assert len(set(texts)) == 10 and all(len(t) > 5 for t in texts)
    # positive codes give the same text
    assert run.raw("--strerror", "8").stdout == texts[7]
    unknown = {run.raw("--strerror", s).stdout for s in ("11", "-11", "-2147483648", "12345")}
    assert len(unknown) == 1 and not unknown & set(texts)


def test_driver_reports_the_error_text(run):
    run.path.write_bytes(b"\x1f\x8b\x08\x20" + bytes(20))
    proc = run.raw(str(run.path), "0", "1")
    assert proc.returncode == BADHEADER
    assert b"gzip" in proc.stderr


# --- guest build ------------------------------------------------------------

GUEST_CC = "powerpc64-linux-gnu-gcc"


def guest_compile(src: Path, out: Path) -> subprocess.CompletedProcess:
    inc = subprocess.run([GUEST_CC, "-print-file-name=include"], capture_output=True,
                         text=True, check=True).stdout.strip()
    cmd = [GUEST_CC, "-Os", "-std=gnu11", "-m64", "-mbig-endian", "-ffreestanding",
           "-fno-builtin", "-nostdinc", "-isystem", inc,
           "-iquote", str(FIRMWARE / "include"), "-fPIE", "-msoft-float",
           "-mno-altivec", "-mno-vsx", "-fno-stack-protector",
           "-Wall", "-Wextra", "-Wno-unused-parameter", "-c", "-o", str(out), str(src)]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which(GUEST_CC) is None, reason="no ppc64 cross compiler")
@pytest.mark.parametrize("name", ["inflate.c", "elf.c"])
def test_compiles_for_the_guest_without_warnings(tmp_path, name):
    proc = guest_compile(FIRMWARE / name, tmp_path / "out.o")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    # freestanding: nothing but the linker's save/restore helpers is imported
    nm = subprocess.run(["powerpc64-linux-gnu-nm", "-u", str(tmp_path / "out.o")],
                        capture_output=True, text=True, check=True).stdout.split()
    assert [s for s in nm if s != "U" and not s.startswith(("_savegpr", "_restgpr"))] == []
