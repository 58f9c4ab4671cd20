"""Speed of the batch data path: the engines' touchpoints/s and peak memory, and the steps
against floors measured in the same run.

    .venv/bin/python -m loadtest.bench_data [--touchpoints 1000000,10000000,100000000]
        [--csv-up-to 10000000] [--threads N] [--work runs/bench-work] [--out docs]
    .venv/bin/python -m loadtest.bench_data --steps [--journeys 200000] [--write docs/data-speed.md]

Engines (the default): for each size, simulated journeys are written as Parquet parts
(``attribid simulate --format parquet``) and as one CSV file each (copied from the parts
by DuckDB); each method then runs as ``attribid attribute --engine E`` in a child process
of its own, timed from start to exit, its peak RSS read from its resource usage
(``os.wait4``). DuckDB reads the parts as one glob; the memory engine, which reads one
file each, the parts joined into one Parquet file, and runs up to ``--memory-up-to``
touchpoints; CSV is written and read up to ``--csv-up-to`` touchpoints. With ``--work``
the inputs stay there and a later run reuses them (100 M touchpoints take minutes to
write). Touchpoints/s per core is touchpoints/s over DuckDB's threads (``--threads``, or
every core). The cost curve fits seconds = fixed + touchpoints x per-touchpoint cost to
each method's two largest Parquet sizes and extrapolates it to 1 billion. Results go to
``runs/data-speed/`` (``engines.md``, ``engines.json``); with ``--out docs`` also to the
section of docs/data-speed.md between the markers below, the rest of the file kept.

Steps (``--steps``): the simulator against drawing its uniforms alone; the loader against
reading the file's bytes and counting its lines in one NumPy pass; each classic model
against one NumPy pass over the touches (bincount). Figures are medians of ``--repeats``
runs after a warm-up that compiles the kernels.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import resource

import numpy as np

BEGIN, END = "<!-- loadtest.bench_data: begin -->", "<!-- loadtest.bench_data: end -->"
#: touchpoints per simulated journey, near enough to size a run (the balanced world's mean)
TOUCHES_PER_JOURNEY = 4.0
DEFAULT_METHODS = ("last-click", "first-click", "linear", "time-decay", "position-based",
                   "markov", "shapley", "network")
#: the size the cost curve extrapolates to
BILLION = 1_000_000_000
ROOT = Path(__file__).resolve().parents[1]
ATTRIBID = [sys.executable, "-m", "attribid.cli.main"]


@dataclass(frozen=True)
class EngineRun:
    """One ``attribid attribute`` run in a child process."""

    touchpoints: int
    file_format: str
    engine: str
    method: str
    seconds: float
    peak_rss_mb: float
    exit_code: int
    #: the cores the run may use (DuckDB's threads; 1 for the memory engine's kernels)
    threads: int = 1
    #: DuckDB's memory before it spills ("" for the engine's default, MEMORY_LIMIT)
    memory_limit: str = ""

    @property
    def touchpoints_per_s(self) -> float:
        return self.touchpoints / self.seconds if self.seconds > 0 else float("nan")

    @property
    def per_core(self) -> float:
        return self.touchpoints_per_s / self.threads


def launcher_peak_mb() -> float:
    """This process's peak RSS: no child's figure reads below it (Linux carries the parent's
    high-water mark into a child at exec), so the launcher stays small: it holds no data."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_child(argv: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one command in a child process."""
    start = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=ROOT)
    # wait4 gives this child's own resource usage, not the sum over every child so far
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024.0, child.returncode


def _write_inputs(n_touchpoints: int, folder: Path, seed: int, formats: list[str],
                  joined: bool) -> tuple[dict[str, tuple[str, str]], int]:
    """Parquet parts (and the CSV files, and the parts ``joined`` into one file, when asked)
    of about ``n_touchpoints``, reused when ``folder`` has them: format -> (touchpoints,
    conversions) paths, and the exact count of touchpoint rows."""
    n_journeys = max(int(n_touchpoints / TOUCHES_PER_JOURNEY), 1)
    parts = max(1, n_journeys // 250_000)
    parquet = folder / "parquet"
    if not (parquet / "world.json").exists():
        subprocess.run([*ATTRIBID, "simulate", "--world", "balanced", "--journeys",
                        str(n_journeys), "--seed", str(seed), "--format", "parquet",
                        "--parts", str(parts), "--out", str(parquet)], cwd=ROOT,
                       stdout=subprocess.DEVNULL, check=True)
    tp_glob = str(parquet / "touchpoints" / "*.parquet")
    cv_glob = str(parquet / "conversions" / "*.parquet")
    tp_csv, cv_csv = folder / "touchpoints.csv", folder / "conversions.csv"
    # the memory engine reads one file each: the parts joined
    tp_one, cv_one = folder / "touchpoints.parquet", folder / "conversions.parquet"
    copies = []
    if "csv" in formats:
        copies += [(tp_glob, tp_csv, "HEADER"), (cv_glob, cv_csv, "HEADER")]
    if joined:
        copies += [(tp_glob, tp_one, "FORMAT parquet"), (cv_glob, cv_one, "FORMAT parquet")]
    script = ("import duckdb\ncon = duckdb.connect()\n"
              "con.execute('SET enable_progress_bar = false')\n"
              + "".join(
        f"con.execute(\"COPY (SELECT * FROM read_parquet('{src}')) TO '{dst}' ({options})\")\n"
        for src, dst, options in copies if not Path(dst).exists())
              + f"print(con.execute(\"SELECT count(*) FROM read_parquet('{tp_glob}')\")"
              ".fetchall()[0][0])")
    # in a child: the launcher's memory must stay below what it measures
    rows = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return {"parquet": (tp_glob, cv_glob), "csv": (str(tp_csv), str(cv_csv)),
            "one-parquet": (str(tp_one), str(cv_one))}, int(rows)


def measure_engines(sizes: list[int], methods: list[str], memory_up_to: int,
                    formats: list[str], work: Path, seed: int = 1,
                    log: Callable[[str], None] = print, csv_up_to: int = 10**7,
                    threads: int | None = None, memory_limit: str | None = None,
                    done: Callable[[EngineRun], None] | None = None) -> list[EngineRun]:
    """Every (size, format, engine, method) run, each in a child process; ``done`` hears
    of each run as it ends (a long run's figures are kept if it is stopped)."""
    runs: list[EngineRun] = []
    cores = threads or os.cpu_count() or 1
    for size in sizes:
        folder = work / f"t{size}"
        folder.mkdir(parents=True, exist_ok=True)
        log(f"inputs of ~{size:,} touchpoints under {folder}")
        size_formats = [f for f in formats if f != "csv" or size <= csv_up_to]
        inputs, rows = _write_inputs(size, folder, seed, size_formats,
                                     "parquet" in size_formats and size <= memory_up_to)
        for fmt in size_formats:
            for engine in ("duckdb", "memory"):
                if engine == "memory" and rows > memory_up_to:
                    continue
                tp, cv = inputs["one-parquet" if (fmt, engine) == ("parquet", "memory") else fmt]
                flags = ["--duckdb-threads", str(threads)] if threads and engine == "duckdb" else []
                if memory_limit and engine == "duckdb":
                    flags += ["--duckdb-memory-limit", memory_limit]
                for method in methods:
                    seconds, rss, code = run_child([
                        *ATTRIBID, "attribute", "--touchpoints", tp, "--conversions", cv,
                        "--method", method, "--engine", engine, "--format", "json", *flags])
                    run = EngineRun(rows, fmt, engine, method, seconds, rss, code,
                                    cores if engine == "duckdb" else 1,
                                    (memory_limit or "") if engine == "duckdb" else "")
                    log(f"{rows:>11,} {fmt:7} {engine:6} {method:15} {seconds:8.2f} s "
                        f"{rss:8.0f} MB {run.touchpoints_per_s:12,.0f} touchpoints/s"
                        + ("" if code == 0 else f"  exit {code}"))
                    runs.append(run)
                    if done is not None:
                        done(run)
    return runs


def runs_of_log(text: str, threads: int) -> list[EngineRun]:
    """The runs a log of ``measure_engines`` printed (its lines as they were written).

    >>> runs_of_log(" 1,010 parquet duckdb last-click 2.24 s 221 MB 450 touchpoints/s", 1)[0].seconds
    2.24
    """
    runs = []
    for line in text.splitlines():
        cells = line.split()
        if len(cells) >= 9 and cells[5] == "s" and cells[7] == "MB":
            code = int(cells[-1]) if cells[-2] == "exit" else 0
            runs.append(EngineRun(int(cells[0].replace(",", "")), cells[1], cells[2], cells[3],
                                  float(cells[4]), float(cells[6]), code,
                                  threads if cells[2] == "duckdb" else 1))
    return runs


def cost_curve(runs: list[EngineRun]) -> list[tuple[str, float, float, float, float]]:
    """Per method on Parquet with DuckDB: (method, fixed core-s, core-ns per touchpoint,
    core-seconds at a billion, largest peak MB), from a line through its two largest sizes.

    Core-seconds (wall seconds x DuckDB's threads) make runs with different thread counts
    comparable; they assume the threads kept their cores busy, which overstates the cost
    of a run that waited on disk.

    >>> runs = [EngineRun(10, "parquet", "duckdb", "m", 2.0, 5.0, 0, 1),
    ...         EngineRun(20, "parquet", "duckdb", "m", 2.0, 9.0, 0, 2)]
    >>> cost_curve(runs)[0][:3]
    ('m', 0.0, 200000000.0)
    """
    out = []
    for method in dict.fromkeys(r.method for r in runs):
        # the latest run of each size
        by_size = {r.touchpoints: r for r in runs if (r.method, r.engine, r.file_format)
                   == (method, "duckdb", "parquet") and r.exit_code == 0}
        mine = [by_size[n] for n in sorted(by_size)]
        if len(mine) < 2:
            continue
        a, b = mine[-2], mine[-1]
        core_a, core_b = a.seconds * a.threads, b.seconds * b.threads
        slope = max((core_b - core_a) / (b.touchpoints - a.touchpoints), 0.0)
        fixed = max(core_b - slope * b.touchpoints, 0.0)
        out.append((method, fixed, slope * 1e9, fixed + slope * BILLION,
                    max(r.peak_rss_mb for r in mine)))
    return out


def machine() -> str:
    """The machine in one line: CPU model, cores, memory, Python, load when measured."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh
                          if line.startswith("model name")), model)
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
        memory = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = ", load average {:.1f} at the start".format(os.getloadavg()[0])
    return (f"{model}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"
            f"{load}")


def render_engines(runs: list[EngineRun], commands: list[str], where: str,
                   launcher_mb: float = 0.0) -> str:
    """The runs as a Markdown section: one row per run, DuckDB next to memory."""
    lines = [BEGIN, "## Engines: DuckDB against memory", "",
             "Commands, in order (each adds its runs to the ones before; the latest run of a "
             "size, input, engine and method is the one shown):", "",
             *[f"- `{c}`" for c in commands], "",
             f"Machine: {where}. Each run is `attribid attribute --method M --engine E "
             "--format json` in a child process of its own, timed from its start to its "
             "exit (interpreter start and imports included); peak RSS is the child's "
             "`ru_maxrss`. Per core: touchpoints/s over DuckDB's threads (column *threads*). "
             "Parquet: DuckDB reads the parts as one glob, the memory engine "
             "the parts joined into one file. DuckDB holds at most its memory limit before it "
             "spills to disk (column *limit*; 512MB unless `--duckdb-memory-limit` says "
             "otherwise, `attribid.models.batch.engine.MEMORY_LIMIT`). The launcher's own peak, "
             f"{launcher_mb:,.0f} MB, is the least a child can read. One run each: other "
             "processes share the machine.", "",
             "| touchpoints | input | method | threads | limit | duckdb s "
             "| duckdb touchpoints/s | duckdb per core | duckdb peak MB "
             "| memory s | memory touchpoints/s | memory peak MB |",
             "|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    keyed = {(r.touchpoints, r.file_format, r.method, r.engine): r for r in runs}
    seen = list(dict.fromkeys((r.touchpoints, r.file_format, r.method) for r in runs))
    for size, fmt, method in seen:
        cells = [f"{size:,}", fmt, method]
        duck = keyed.get((size, fmt, method, "duckdb"))
        cells += ([str(duck.threads), duck.memory_limit or "512MB"] if duck else ["-", "-"])
        for engine in ("duckdb", "memory"):
            r = keyed.get((size, fmt, method, engine))
            width = 4 if engine == "duckdb" else 3
            if r is None:
                cells += ["-"] * width
            elif r.exit_code != 0:
                cells += [f"exit {r.exit_code}", *["-"] * (width - 2), f"{r.peak_rss_mb:,.0f}"]
            else:
                cells += [f"{r.seconds:.2f}", f"{r.touchpoints_per_s:,.0f}",
                          *([f"{r.per_core:,.0f}"] if engine == "duckdb" else []),
                          f"{r.peak_rss_mb:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    curve = cost_curve(runs)
    if curve:
        lines += ["", "### Cost curve and a billion touchpoints", "",
                  "Per method, DuckDB on Parquet: a line core-seconds (wall seconds x threads) "
                  "= fixed + touchpoints x cost through the two largest sizes above, and where "
                  "it reaches at 1,000,000,000 touchpoints; hours on this machine's 2 cores are "
                  "half the core-hours. Assumptions: the same machine and simulated world (about 4 "
                  "touchpoints per journey, 7 channels), the cost per touchpoint of the largest "
                  "step holding on (DuckDB's memory limit fixed, so a larger input spills more "
                  "to disk, not more to RAM: peak RSS stays near the largest one measured), and "
                  "about 13 bytes per touchpoint of Parquet plus spill room of the same order "
                  "on disk.", "",
                  "| method | fixed core-s | core-ns per touchpoint | est. core-s at 1e9 "
                  "| est. hours at 1e9 on 2 cores | largest peak MB |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {m} | {fixed:.1f} | {ns:,.0f} | {at:,.0f} | {at / 7200:.2f} | {mb:,.0f} |"
                  for m, fixed, ns, at, mb in curve]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    """``text`` with the marked section replaced by ``section`` (appended when absent).

    >>> replace_section("# A\\n", BEGIN + "\\nx\\n" + END + "\\n").splitlines()[-1] == END
    True
    >>> replace_section("a\\n" + BEGIN + "\\nold\\n" + END + "\\nb\\n", "new\\n")
    'a\\nnew\\nb\\n'
    """
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        return head + section + tail
    return text.rstrip("\n") + "\n\n" + section


# --- the steps against their floors ---

def _median_s(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _read_floor(path: str) -> None:
    with open(path, "rb") as fh:
        data = fh.read()
    np.count_nonzero(np.frombuffer(data, np.uint8) == 10)


def measure(n_journeys: int, repeats: int) -> list[tuple[str, str, float, float, str]]:
    """Rows of (what, size, seconds, floor seconds, floor) for every measured step."""
    from attribid.models.attribution.classic import METHODS, attribute_journeys
    from attribid.models.data.loader import load_journeys, write_journeys
    from attribid.models.simulation.simulate import WORLDS, simulate

    rows = []
    simulate(WORLDS["balanced"], 200, seed=0)            # compile the kernels once
    for name, world in WORLDS.items():
        sec = _median_s(lambda: simulate(world, n_journeys, seed=1), repeats)
        journeys, _ = simulate(world, n_journeys, seed=1)
        n = journeys.n_touchpoints
        floor = _median_s(lambda: np.random.default_rng(1).random(3 * n + 2 * n_journeys),
                          repeats)
        rows.append((f"simulate world {name}", f"{n_journeys:,} journeys", sec, floor,
                     "draw its uniforms"))
    journeys, truth = simulate(WORLDS["balanced"], n_journeys, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        tp, cv = os.path.join(tmp, "t.csv"), os.path.join(tmp, "c.csv")
        sec = _median_s(lambda: write_journeys(journeys, tp, cv, truth.after_conversion), 1)
        rows.append(("write_journeys (CSV)", f"{journeys.n_touchpoints:,} touchpoints", sec,
                     float("nan"), "-"))
        sec = _median_s(lambda: load_journeys(tp, cv), repeats)
        floor = _median_s(lambda: _read_floor(tp), repeats)
        rows.append(("load_journeys (CSV)", f"{journeys.n_touchpoints:,} touchpoints", sec,
                     floor, "read bytes + count lines"))
    for method in METHODS:
        attribute_journeys(journeys.subset(np.arange(100)), method)   # compile
        sec = _median_s(lambda: attribute_journeys(journeys, method), repeats)
        floor = _median_s(lambda: np.bincount(journeys.channel, minlength=7), repeats)
        rows.append((f"attribute {method}", f"{n_journeys:,} journeys", sec, floor,
                     "bincount of channels"))
    return rows


def render(rows: list[tuple[str, str, float, float, str]], command: str) -> str:
    """A Markdown report of the rows."""
    lines = [f"<!-- produced by: {command} -->", "# Batch data path: speed",
             "", f"Command: `{command}`", "",
             "| step | size | ms | floor | floor ms | x floor |",
             "|---|---|---:|---|---:|---:|"]
    for what, size, sec, floor, floor_name in rows:
        ratio = f"{sec / floor:.1f}" if floor == floor and floor > 0 else "-"
        floor_ms = f"{floor * 1e3:.1f}" if floor == floor else "-"
        lines.append(f"| {what} | {size} | {sec * 1e3:.1f} | {floor_name} | {floor_ms} "
                     f"| {ratio} |")
    lines += ["", f"Machine: {os.cpu_count()} cores; medians of repeated runs; "
              "the load of other processes on the machine is not controlled."]
    return "\n".join(lines) + "\n"


def _steps(args: argparse.Namespace, command: str) -> None:
    text = render(measure(args.journeys, args.repeats), command)
    print(text)
    if args.write:
        old = Path(args.write).read_text(encoding="utf-8") if Path(args.write).exists() else ""
        # the engines' section, when the file has one, stays as it is
        if BEGIN in old and END in old:
            text = text.rstrip("\n") + "\n\n" + BEGIN + old.split(BEGIN, 1)[1].split(END, 1)[0] \
                + END + "\n"
        Path(args.write).write_text(text, encoding="utf-8")


def _engines(args: argparse.Namespace, command: str) -> None:
    sizes = [int(float(s)) for s in args.touchpoints.split(",") if s.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    where = machine()
    out = Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    earlier: list[EngineRun] = []
    commands: list[str] = []
    saved = out / "engines.json"
    if args.append and saved.exists():
        old = json.loads(saved.read_text(encoding="utf-8"))
        commands = list(old["commands"])
        earlier = [EngineRun(**{k: v for k, v in r.items() if k != "touchpoints_per_s"})
                   for r in old["runs"]]
    if args.from_log:
        command += f" (its runs rebuilt from {args.from_log})"
        earlier += runs_of_log(Path(args.from_log).read_text(encoding="utf-8"),
                               args.threads or os.cpu_count() or 1)
        sizes = []
    if sizes or args.from_log or not commands:
        commands.append(command)
    elif args.append and saved.exists():
        # a rerun that measures nothing only renders: no command, and the machine as measured
        where = old["machine"]
    runs: list[EngineRun] = list(earlier)

    def save(run: EngineRun | None = None) -> None:
        if run is not None:
            runs.append(run)
        saved.write_text(json.dumps(
            {"commands": commands, "machine": where, "launcher_peak_mb": launcher_peak_mb(),
             "runs": [{**asdict(r), "touchpoints_per_s": r.touchpoints_per_s} for r in runs]},
            indent=2) + "\n", encoding="utf-8")

    kwargs = {"csv_up_to": int(float(args.csv_up_to)), "threads": args.threads,
              "memory_limit": args.memory_limit, "done": save}
    if args.work:
        measure_engines(sizes, methods, args.memory_up_to, formats, Path(args.work), **kwargs)
    else:
        with tempfile.TemporaryDirectory() as work:
            measure_engines(sizes, methods, args.memory_up_to, formats, Path(work), **kwargs)
    save()
    section = render_engines(runs, commands, where, launcher_peak_mb())
    (out / "engines.md").write_text(section, encoding="utf-8")
    print(section)
    if args.out:
        doc = Path(args.out) / "data-speed.md"
        old = doc.read_text(encoding="utf-8") if doc.exists() else ""
        doc.write_text(replace_section(old, section), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--touchpoints", default="1000000,10000000",
                        help="sizes to run, comma-separated (default 1e6 and 1e7)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"methods to run (default {','.join(DEFAULT_METHODS)})")
    parser.add_argument("--formats", default="parquet,csv", help="inputs: parquet, csv")
    parser.add_argument("--memory-up-to", type=int, default=20_000_000,
                        help="largest input the memory engine reads (default 2e7 touchpoints)")
    parser.add_argument("--runs", default="runs/data-speed", help="where results go")
    parser.add_argument("--out", default=None,
                        help="also write the section of OUT/data-speed.md (e.g. docs)")
    parser.add_argument("--work", default=None,
                        help="folder for the inputs, kept and reused (default: a temporary one)")
    parser.add_argument("--csv-up-to", default="10000000",
                        help="largest input also run from CSV (default 1e7 touchpoints)")
    parser.add_argument("--memory-limit", default=None,
                        help="DuckDB's memory before it spills (--duckdb-memory-limit)")
    parser.add_argument("--append", action="store_true",
                        help="add to the runs already in --runs/engines.json")
    parser.add_argument("--from-log", default=None,
                        help="take the runs of an earlier run's log (one that was stopped)")
    parser.add_argument("--threads", type=int, default=None,
                        help="DuckDB's threads (--duckdb-threads; default: every core)")
    parser.add_argument("--steps", action="store_true",
                        help="the steps against their floors instead of the engines")
    parser.add_argument("--journeys", type=int, default=200_000, help="--steps: journeys")
    parser.add_argument("--repeats", type=int, default=3, help="--steps: repeats")
    parser.add_argument("--write", default=None, help="--steps: also write the report here")
    args = parser.parse_args(argv)
    command = ("python -m loadtest.bench_data "
               + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    if not args.steps and args.write:
        parser.error("--write applies to --steps (the engines' report goes to --runs and --out)")
    if args.steps:
        _steps(args, command)
    else:
        _engines(args, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
