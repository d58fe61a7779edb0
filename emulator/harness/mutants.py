"""The mutation harness: does the suite notice a broken checker or wrapper?

A mutant is one small semantic bug, written down in tests/mutants/*.toml
as a file, an exact snippet of it, its replacement and a one-line
description (and optionally the tests to run).  `scripts/mutants` (and
`make mutants`) puts each mutant, alone, into its own scratch copy of the
project, rebuilds what depends on the change, proves the build changed
(the object compiled from a firmware source, or a Python file's code
object, must differ from the unmutated one: never a stale binary), runs
its tests with -x and reports one of:

- killed: a test failed (the first failing test is named);
- survived: every test passed: a gap in the suite, or an equivalent
  mutant (docs/testing.md lists those);
- did not build: the mutant does not compile;
- unchanged: the change compiles to the same object (a bad mutant);
- stale: its snippet is not in the file exactly once (the file changed).

Scratch copies: one base copy of the working tree (tracked and untracked
files git does not ignore, with their times) and of build/ (the large
Linux source tree linked, not copied) is made and brought up to date
first; each mutant then gets a copy of the base, so make rebuilds only
what the mutant's file touches.  Nothing in the project's own tree is
written.  Tests run as `python -m pytest -x` in the copy, with the copy
first on the Python path and CI=1 (hypothesis derandomised: a mutant is
killed or not the same way every run).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import enum
import hashlib
import marshal
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ..errors import InputError, SetupError

ROOT = Path(__file__).resolve().parent.parent.parent
MUTANTS_DIR = ROOT / "tests" / "mutants"
#: Build products a mutant's copy shares with the project instead of copying
#: (large, read only for the tests: the Linux source tree of build-linux-zimage).
LINKED_BUILD = ("linux-6.1",)
#: The firmware configurations a mutant of firmware/ is rebuilt in (and
#: must change an object of): both heap policies, as FirmwareBuild names
#: their directories.  Other configurations are rebuilt by the tests.
CONFIGS = {Path("build") / "firmware": "fixed", Path("build") / "firmware-seed": "seed"}
TEST_TIMEOUT = 900


class MutantError(InputError):
    """A mutant list that cannot be used as written."""


class Status(str, enum.Enum):
    KILLED = "killed"
    SURVIVED = "survived"
    NO_BUILD = "did not build"
    UNCHANGED = "unchanged"
    STALE = "stale"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str              # relative to the project root
    original: str
    replacement: str
    description: str
    tests: tuple[str, ...]     # pytest arguments (files, node ids)
    source: str = ""       # the list it came from

    def apply(self, text: str) -> str:
        if text.count(self.original) != 1:
            raise MutantError(f"{self.name}: its snippet occurs "
                              f"{text.count(self.original)} times in {self.file}, not once")
        return text.replace(self.original, self.replacement)


@dataclass
class Outcome:
    mutant: Mutant
    status: Status
    detail: str = ""           # the first failing test, the build error...
    seconds: float = 0.0


# --- the lists ----------------------------------------------------------------


def load(paths: Iterable[Path]) -> list[Mutant]:
    """Every [[mutant]] of the given lists, with the tests of its [tests]
    table entry (a glob over file names) where it names none itself."""
    out: list[Mutant] = []
    names: set[str] = set()
    for path in sorted(paths):
        try:
            data = tomlkit.parse(path.read_text()).unwrap()
        except (OSError, TOMLKitError) as e:
            raise MutantError(f"{path}: {e}") from None
        defaults = data.get("tests", {})
        for i, entry in enumerate(data.get("mutant", [])):
            where = f"{path.name}: mutant {i + 1}"
            missing = [k for k in ("name", "file", "original", "replacement", "description")
                       if not isinstance(entry.get(k), str)
                       or (not entry[k] and k != "replacement")]   # a deletion
            if missing:
                raise MutantError(f"{where}: missing {', '.join(missing)}")
            unknown = set(entry) - {"name", "file", "original", "replacement",
                                    "description", "tests"}
            if unknown:
                raise MutantError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
            if entry["name"] in names:
                raise MutantError(f"{where}: the name {entry['name']!r} is taken")
            if entry["original"] == entry["replacement"]:
                raise MutantError(f"{where}: replacement equals the original")
            names.add(entry["name"])
            tests = entry.get("tests") or next(
                (t for pattern, t in defaults.items() if fnmatch(entry["file"], pattern)), None)
            if not tests:
                raise MutantError(f"{where}: no tests (give tests = [...] or a [tests] "
                                  f"entry matching {entry['file']})")
            out.append(Mutant(entry["name"], entry["file"], entry["original"],
                              entry["replacement"], entry["description"], tuple(tests),
                              path.name))
    return out


def stale(mutants: Sequence[Mutant], root: Path = ROOT) -> list[Outcome]:
    """The mutants whose snippet is not exactly once in its file now."""
    out = []
    for m in mutants:
        path = root / m.file
        try:
            n = path.read_text().count(m.original)
        except OSError as e:
            out.append(Outcome(m, Status.STALE, f"{m.file}: {e.strerror}"))
            continue
        if n != 1:
            out.append(Outcome(m, Status.STALE, f"its snippet occurs {n} times in {m.file}"))
    return out


# --- scratch copies -------------------------------------------------------------


def project_files(root: Path = ROOT) -> list[str]:
    """The working tree: tracked files and untracked ones git does not ignore."""
    proc = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"],
                          cwd=root, capture_output=True)
    if proc.returncode != 0:
        raise SetupError(f"git ls-files failed: {proc.stderr.decode(errors='replace')}")
    return [f for f in proc.stdout.decode().split("\0") if f and (root / f).is_file()]


def copy_project(root: Path, dest: Path) -> None:
    """dest: a copy of the working tree and of build/, times kept."""
    for rel in project_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    build = root / "build"
    if build.is_dir():
        (dest / "build").mkdir(exist_ok=True)
        for item in build.iterdir():
            if item.name in LINKED_BUILD:
                (dest / "build" / item.name).symlink_to(item.resolve())
            elif item.is_dir():
                shutil.copytree(item, dest / "build" / item.name, symlinks=True)
            else:
                shutil.copy2(item, dest / "build" / item.name)


def clone(base: Path, dest: Path) -> None:
    shutil.copytree(base, dest, symlinks=True)


def make_firmware(root: Path) -> subprocess.CompletedProcess[str]:
    """Both policies' configurations, as FirmwareBuild makes them; the
    first that fails, or the last."""
    for build, policy in CONFIGS.items():
        proc = subprocess.run(["make", "-s", "-C", str(root / "firmware"),
                               f"O={root / build}", f"POLICY={policy}"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            break
    return proc


def built_objects(root: Path, source: str) -> list[Path]:
    """The objects that `source` (a path under firmware/) goes into, in
    each configuration: its own object; for a header, the linker script
    or the Makefile, every object and the linked images."""
    out: list[Path] = []
    rel = Path(source).relative_to("firmware")
    for build in CONFIGS:
        b = root / build
        if rel.suffix not in (".c", ".S"):
            out += [*sorted(b.rglob("*.o")), b / "wrapper.elf", b / "testkernel.elf"]
        elif rel.parts[0] == "testkernel":
            out.append(b / "kernel" / rel.with_suffix(".o").name)
        else:
            out.append(b / rel.with_suffix(".o"))
    return out


def digest(paths: Sequence[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}


def code_digest(source: str, name: str) -> str | None:
    """A Python file's compiled code, without its line numbers mattering
    less than its instructions: None when it does not compile."""
    try:
        return hashlib.sha256(marshal.dumps(compile(source, name, "exec"))).hexdigest()
    except (SyntaxError, ValueError):
        return None


# --- one mutant -------------------------------------------------------------------


def pytest_command(tests: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]


def test_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root)
    env["CI"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


#: pytest's short summary: "FAILED node id - message" (ids may hold spaces).
FAILED = re.compile(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", re.M)


def first_failure(output: str) -> str:
    m = FAILED.search(output)
    if m:
        return m.group(1)
    tail = [line for line in output.strip().splitlines() if line.strip()]
    return tail[-1] if tail else "(no output)"


def run_tests(root: Path, tests: Sequence[str], timeout: float) -> tuple[Status, str]:
    try:
        proc = subprocess.run(pytest_command(tests), cwd=root, env=test_env(root),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Status.KILLED, f"timed out after {timeout:.0f} s"
    if proc.returncode == 0:
        return Status.SURVIVED, ""
    if proc.returncode == 1:
        return Status.KILLED, first_failure(proc.stdout)
    first = first_failure(proc.stdout + proc.stderr)
    return Status.ERROR, f"pytest exit {proc.returncode}: {first}"


def run_mutant(m: Mutant, base: Path, scratch: Path, timeout: float = TEST_TIMEOUT,
               baseline: dict[Path, str] | None = None) -> Outcome:
    """The mutant in its own copy of base: build, prove the change, test."""
    t0 = time.monotonic()
    work = scratch / re.sub(r"[^\w.-]", "_", m.name)
    if work.exists():
        shutil.rmtree(work)
    try:
        clone(base, work)
        path = work / m.file
        before = path.read_text()
        after = m.apply(before)
        path.write_text(after)
        if m.file.endswith(".py"):
            old, new = code_digest(before, m.file), code_digest(after, m.file)
            if new is None:
                return Outcome(m, Status.NO_BUILD, "does not compile",
                               time.monotonic() - t0)
            if old == new:
                return Outcome(m, Status.UNCHANGED, "the same code object",
                               time.monotonic() - t0)
        elif m.file.startswith("firmware/") and not m.file.startswith("firmware/host/"):
            built = make_firmware(work)
            if built.returncode != 0:
                lines = (built.stdout + built.stderr).strip().splitlines()
                error = next((line for line in lines if "error" in line), lines[-1] if lines
                             else "make failed")
                return Outcome(m, Status.NO_BUILD, error.strip(), time.monotonic() - t0)
            objects = built_objects(work, m.file)
            now = digest(objects)
            was = {p: (baseline or {}).get(base / p.relative_to(work)) for p in objects}
            if not objects or all(now.get(p) == was[p] for p in objects):
                return Outcome(m, Status.UNCHANGED, "the built object is the same",
                               time.monotonic() - t0)
        status, detail = run_tests(work, m.tests, timeout)
        return Outcome(m, status, detail, time.monotonic() - t0)
    except MutantError as e:
        return Outcome(m, Status.STALE, str(e), time.monotonic() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- a campaign ---------------------------------------------------------------------


@dataclass
class Campaign:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    baseline_failure: str | None = None

    @property
    def run(self) -> list[Outcome]:
        """The mutants that were built and tested."""
        return [o for o in self.outcomes if o.status in (Status.KILLED, Status.SURVIVED)]

    @property
    def killed(self) -> int:
        return sum(o.status is Status.KILLED for o in self.outcomes)

    @property
    def score(self) -> float:
        """Killed, as a percentage of every mutant in the lists (a mutant
        that did not build, or is stale, counts against it)."""
        return 100.0 * self.killed / len(self.outcomes) if self.outcomes else 0.0


def prepare_base(root: Path, scratch: Path) -> tuple[Path, dict[Path, str]]:
    """The base copy, its default firmware built, and its objects' hashes."""
    base = scratch / "base"
    copy_project(root, base)
    built = make_firmware(base)
    if built.returncode != 0:
        raise SetupError(f"the unmutated firmware does not build:\n{built.stderr}")
    return base, digest([o for build in CONFIGS
                         for o in [*sorted((base / build).rglob("*.o")),
                                   base / build / "wrapper.elf", base / build / "testkernel.elf"]])


def campaign(mutants: Sequence[Mutant], *, jobs: int = 1, timeout: float = TEST_TIMEOUT,
             check_baseline: bool = True, root: Path = ROOT,
             progress: Callable[[Outcome, int, int], None] | None = None,
             keep: Path | None = None) -> Campaign:
    """Every mutant, jobs at a time, each in its own copy."""
    t0 = time.monotonic()
    result = Campaign()
    bad = {o.mutant.name: o for o in stale(mutants, root)}
    todo = [m for m in mutants if m.name not in bad]
    result.outcomes += bad.values()
    scratch = Path(tempfile.mkdtemp(prefix="bwemu-mutants-", dir=keep))
    try:
        base, baseline = prepare_base(root, scratch)
        if check_baseline and todo:
            selection = sorted({t for m in todo for t in m.tests})
            status, detail = run_tests(base, [*selection, "-n", str(jobs)] if jobs > 1
                                       else selection, timeout * 4)
            if status is not Status.SURVIVED:
                result.baseline_failure = detail
                result.seconds = time.monotonic() - t0
                return result
        done = len(result.outcomes)
        with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(run_mutant, m, base, scratch, timeout, baseline): m
                       for m in todo}
            for future in concurrent.futures.as_completed(futures):
                try:
                    outcome = future.result()
                except Exception as e:        # a worker that died: say so, go on
                    outcome = Outcome(futures[future], Status.ERROR, f"the worker failed: {e}")
                result.outcomes.append(outcome)
                done += 1
                if progress is not None:
                    progress(outcome, done, len(mutants))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    order = {m.name: i for i, m in enumerate(mutants)}
    result.outcomes.sort(key=lambda o: order[o.mutant.name])
    result.seconds = time.monotonic() - t0
    return result


def report(c: Campaign) -> str:
    """The table, then the figure."""
    lines = []
    if c.baseline_failure is not None:
        return (f"the unmutated copy fails its tests ({c.baseline_failure}): "
                f"fix that first, no mutant was run")
    width = max((len(o.mutant.name) for o in c.outcomes), default=10)
    for o in c.outcomes:
        lines.append(f"{o.mutant.name:<{width}}  {o.status.value:<13} {o.seconds:6.1f}s  "
                     f"{o.detail}")
    survivors = [o for o in c.outcomes if o.status is not Status.KILLED]
    if survivors:
        lines.append("")
        lines.append("not killed:")
        lines += [f"  {o.mutant.name} ({o.mutant.file}, {o.status.value}): "
                  f"{o.mutant.description}" for o in survivors]
    lines.append("")
    lines.append(f"{c.killed} of {len(c.outcomes)} mutants killed ({c.score:.1f}%) "
                 f"in {c.seconds / 60:.1f} min")
    return "\n".join(lines)


def as_json(c: Campaign) -> dict[str, object]:
    return {"killed": c.killed, "total": len(c.outcomes), "score": round(c.score, 1),
            "seconds": round(c.seconds, 1), "baseline_failure": c.baseline_failure,
            "mutants": [{**dataclasses.asdict(o.mutant), "status": o.status.value,
                         "detail": o.detail, "seconds": round(o.seconds, 1)}
                        for o in c.outcomes]}


__all__ = ["Campaign", "Mutant", "MutantError", "Outcome", "Status", "as_json", "campaign",
           "load", "report", "run_mutant", "stale"]
