"""The wrapper's memset/memcpy/memmove against the host C library, over
every alignment, and its string routines (strcmp, strncmp, memcmp,
strncpy, strnlen, strchr, memchr, strlen, strcpy) on strings that differ,
share prefixes or end early (lib/string.c built for the host with ASan and
UBSan)."""

import subprocess

from hostc import build_host_tool

RENAME = ("memset=bw_memset", "memcpy=bw_memcpy", "memmove=bw_memmove",
          "memcmp=bw_memcmp", "memchr=bw_memchr", "strlen=bw_strlen",
          "strnlen=bw_strnlen", "strcmp=bw_strcmp", "strncmp=bw_strncmp",
          "strchr=bw_strchr", "strcpy=bw_strcpy", "strncpy=bw_strncpy")


def test_memory_routines_match_libc_at_every_alignment():
    tool = build_host_tool("string_driver", ["lib/string.c"], defines=RENAME)
    p = subprocess.run([str(tool)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("ok ") and int(p.stdout.split()[1]) > 20000
