"""Benchmark of the Dagster code location and ``pond apply`` on a 500-node ``pond.yaml``.

    .venv/bin/python bench/bench_orchestration.py            # 500 nodes (minutes: first applies)
    .venv/bin/python bench/bench_orchestration.py --quick    # 100 nodes
    .venv/bin/python bench/bench_orchestration.py --workdir /tmp/pond-bench  # keep the data

Prints figures only (no asserts). The generated ``pond.yaml`` has ``csv_directory``
nodes over CSV data files in the pond (one in ten nodes) and ``sql_derived_series``
nodes in ten top-level groups, each group a binary tree whose root reads a static
series or the children of a ``csv_directory``; some nodes read two parents, some have
a ``refresh`` (schedules) or a ``schema:`` (asset checks).

Goal (issue 4): loading the code location (``build_definitions``) takes under 2 s
beyond ``import dagster``, measured in fresh processes.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from pond_pipeline.api import Pond
from pond_pipeline.project import apply as applying
from pond_pipeline.project import pipeline as pipelines

BASE = "/data/base.series"
GROUPS = 10
CSV_PER_DIRECTORY = 2
LOAD_GOAL_S = 2.0
PYTHON = sys.executable
POND_CLI = str(Path(sys.executable).with_name("pond"))
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class Row:
    """One line of the summary table."""

    name: str
    value: str
    goal: str = ""
    ok: bool | None = None


# -- the pond.yaml --------------------------------------------------------------------------
def project(nodes: int) -> tuple[dict[str, Any], list[int]]:
    """A ``pond.yaml`` of ``nodes`` nodes, and the site numbers its CSV directories read."""
    directories = max(1, nodes // 10)
    derived = nodes - directories
    spec: dict[str, Any] = {}
    sites = list(range(directories))
    for site in sites:
        spec[f"/processed/site{site:03d}"] = {
            "factory": "csv_directory",
            "config": {
                "pattern": f"/inbox/site{site:03d}/*.csv",
                "type": "series",
                "temporal_column": "timestamp",
            },
        }
    per_group = [derived // GROUPS + (1 if g < derived % GROUPS else 0) for g in range(GROUPS)]
    for group, size in enumerate(per_group):
        names = [f"/g{group:02d}/n{i:03d}.series" for i in range(size)]
        for i, path in enumerate(names):
            if i == 0:
                if group % 2 == 0:
                    config: dict[str, Any] = {
                        "source": BASE,
                        "query": "SELECT timestamp, sensor, value FROM source "
                        f"WHERE value > {group}",
                    }
                else:
                    site = group % directories
                    config = {
                        "source": f"/processed/site{site:03d}/*.series",
                        "query": "SELECT timestamp, sensor, value FROM source",
                    }
            elif i % 9 == 0 and i >= 3:
                config = {
                    "sources": {"a": names[(i - 1) // 2], "b": names[(i - 3) // 2]},
                    "query": "SELECT * FROM a UNION ALL SELECT * FROM b",
                }
            else:
                config = {
                    "source": names[(i - 1) // 2],
                    "query": f"SELECT * FROM source WHERE value > {i % 7}",
                }
            node: dict[str, Any] = {
                "factory": "sql_derived_series",
                "description": f"node {i} of group {group}",
                "config": config,
            }
            if i % 10 == 0:
                node["refresh"] = "1h" if i % 20 == 0 else "6h"
            if i % 25 == 5:
                node["schema"] = {
                    "temporal_column": "timestamp",
                    "columns": {
                        "sensor": {"type": "string", "nullable": False},
                        "value": {"type": "double", "checks": {"ge": -100, "le": 200}},
                    },
                }
            spec[path] = node
    return {"pond": "./pond", "nodes": spec}, sites


def build_pond(folder: Path, sites: list[int]) -> Pond:
    """The static files the nodes read: a series and two small CSV data files per site."""
    pond = Pond.create(str(folder / "pond"))
    rows = 100
    stamps = [BASE_TIME + timedelta(minutes=i) for i in range(rows)]
    table = pa.table(
        {
            "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "sensor": [f"s{i % 3}" for i in range(rows)],
            "value": [float(i) for i in range(rows)],
        }
    )
    with pond.transaction("bench static data") as tx:
        tx.write_table(BASE, table, "series", parents=True)
        for site in sites:
            for index in range(CSV_PER_DIRECTORY):
                lines = ["timestamp,sensor,value"] + [
                    f"2024-01-0{index + 1} {h:02d}:00:00,s{site},{h * 1.5}" for h in range(24)
                ]
                tx.write_bytes(
                    f"/inbox/site{site:03d}/log{index}.csv",
                    ("\n".join(lines) + "\n").encode(),
                    parents=True,
                )
    return pond


def setup(folder: Path, nodes: int) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    spec, sites = project(nodes)
    config = folder / "pond.yaml"
    config.write_text(yaml.safe_dump(spec, sort_keys=False, width=200))
    build_pond(folder, sites)
    return config


def env_without_pond() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("POND", "POND_CONFIG")}


# -- pond apply ------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def apply_in_process(config: Path) -> list[Row]:
    t0 = time.perf_counter()
    bare = pipelines.load(config)
    t1 = time.perf_counter()
    pond = pipelines.open_pond(bare)
    t2 = time.perf_counter()
    first = applying.apply(pond, bare)
    t3 = time.perf_counter()
    again = pipelines.load(config, pond=pond)
    t4 = time.perf_counter()
    second = applying.apply(pond, again)
    t5 = time.perf_counter()
    created = sum(1 for item in first if item.action == "create")
    unchanged = sum(1 for item in second if item.action == "unchanged")
    nodes = len(bare.nodes)
    print(f"  load pond.yaml ({nodes} nodes, no pond)        {ms(t1 - t0):>8}")
    print(f"  open the pond                                  {ms(t2 - t1):>8}")
    print(f"  first apply (plan + one transaction)           {ms(t3 - t2):>8}  {created} created")
    print(f"  load pond.yaml + the pond's dynamic nodes      {ms(t4 - t3):>8}")
    print(
        f"  second apply (plan only: nothing to do)        {ms(t5 - t4):>8}  {unchanged} unchanged"
    )
    if created != nodes or unchanged != nodes:
        print(f"  !!!!! expected {nodes} created and {nodes} unchanged !!!!!")
    return [
        Row(f"apply in process: load pond.yaml ({nodes} nodes)", ms(t1 - t0)),
        Row("apply in process: first apply", ms(t3 - t2)),
        Row("apply in process: load with pond", ms(t4 - t3)),
        Row("apply in process: second (no-op) apply", ms(t5 - t4)),
    ]


def apply_cli(config: Path) -> list[Row]:
    out = []
    for label in ("first", "second (no-op)"):
        t0 = time.perf_counter()
        done = subprocess.run(
            [POND_CLI, "apply", str(config)],
            capture_output=True,
            text=True,
            check=False,
            env=env_without_pond(),
            cwd=config.parent,
        )
        wall = time.perf_counter() - t0
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        if done.returncode != 0:
            print(f"  !! pond apply failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        print(f"  pond apply, {label + ':':<16} {ms(wall):>8}  ({last})")
        out.append(Row(f"pond apply (CLI process): {label}", ms(wall)))
    return out


# -- the code location ----------------------------------------------------------------------
LOAD_SCRIPT = """
import sys, time
marks = [(time.perf_counter(), time.process_time())]
def mark():
    marks.append((time.perf_counter(), time.process_time()))
import dagster
mark()
import dagster_duckdb, pond_pipeline.orchestration.assets, pond_pipeline.project.pipeline
mark()
import pond_pipeline.orchestration.definitions as location  # builds `defs` from POND_CONFIG
mark()
repository = location.defs.get_repository_def()
mark()
from dagster._core.remote_representation.external_data import RepositorySnap
snap = RepositorySnap.from_def(repository)
mark()
again = location.build_definitions(sys.argv[1])
again.get_repository_def()
mark()
keys = repository.asset_graph.get_all_asset_keys()
wall = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
cpu = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
print(*wall, *cpu, len(keys), len(repository.schedule_defs),
      len(repository.asset_graph.asset_check_keys))
"""
PHASES = [
    "import dagster",
    "import pond_pipeline + dagster_duckdb",
    "build_definitions (module import: defs)",
    "defs.get_repository_def() (resolve the graph)",
    "RepositorySnap (what a code server serializes)",
    "build_definitions + resolve again, warm",
]


def code_location(config: Path, repeat: int, nodes: int) -> list[Row]:
    """Each phase's wall-clock and CPU time in ``repeat`` fresh processes (medians).
    CPU time hardly moves with the machine's load; wall-clock time is the goal's."""
    env = {**env_without_pond(), "POND_CONFIG": str(config)}
    walls: list[list[float]] = []
    cpus: list[list[float]] = []
    counts = ""
    for _ in range(repeat):
        done = subprocess.run(
            [PYTHON, "-c", LOAD_SCRIPT, str(config)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            cwd=config.parent,
        )
        if done.returncode != 0:
            print(f"  !! loading failed ({done.returncode}): {done.stderr.strip()[-500:]}")
            continue
        parts = done.stdout.split()
        phases = len(PHASES)
        wall = [float(x) for x in parts[:phases]]
        cpu = [float(x) for x in parts[phases : 2 * phases]]
        # beyond import dagster: pond's imports, the build, the graph's resolution
        walls.append([*wall, sum(wall[1:4])])
        cpus.append([*cpu, sum(cpu[1:4])])
        extra = parts[2 * phases :]
        counts = f"{extra[0]} asset keys, {extra[1]} schedules, {extra[2]} asset checks"
    if not walls:
        return [Row("code location: load", "failed", f"< {LOAD_GOAL_S:.0f} s", False)]
    wall_s = [statistics.median(w[i] for w in walls) for i in range(len(PHASES) + 1)]
    cpu_s = [statistics.median(c[i] for c in cpus) for i in range(len(PHASES) + 1)]
    print(f"  in {len(walls)} fresh processes (medians): {counts}")
    print(f"  {'phase':<48} {'wall':>8} {'CPU':>8}")
    for index, name in enumerate(PHASES[:4]):
        print(f"  {name:<48} {ms(wall_s[index]):>8} {ms(cpu_s[index]):>8}")
    beyond, beyond_cpu = wall_s[-1], cpu_s[-1]
    print(f"  {'= beyond import dagster (goal < 2 s)':<48} {ms(beyond):>8} {ms(beyond_cpu):>8}")
    for index, name in list(enumerate(PHASES))[4:]:
        print(f"  {name:<48} {ms(wall_s[index]):>8} {ms(cpu_s[index]):>8}")
    return [
        Row("code location: import dagster", f"{ms(wall_s[0])} (CPU {ms(cpu_s[0])})"),
        Row(
            f"code location: load {nodes} nodes beyond import dagster",
            f"{ms(beyond)} (CPU {ms(beyond_cpu)}; imports {ms(wall_s[1])}, "
            f"build {ms(wall_s[2])}, resolve {ms(wall_s[3])})",
            f"< {LOAD_GOAL_S:.0f} s",
            beyond < LOAD_GOAL_S,
        ),
        Row("code location: build + resolve again (warm)", ms(wall_s[5])),
        Row("code location: RepositorySnap.from_def", ms(wall_s[4])),
    ]


# -- main ------------------------------------------------------------------------------------
def summary(rows: list[Row]) -> None:
    width = max(len(r.name) for r in rows)
    value_width = max(len(r.value) for r in rows)
    print()
    print("=" * (width + value_width + 24))
    print(f"{'SUMMARY':<{width}}  {'figure':<{value_width}}  {'goal':<10} ok")
    print("-" * (width + value_width + 24))
    for r in rows:
        mark = "" if r.ok is None else ("yes" if r.ok else "NO")
        print(f"{r.name:<{width}}  {r.value:<{value_width}}  {r.goal:<10} {mark}")
    print("=" * (width + value_width + 24))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 nodes")
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temp dir)")
    parser.add_argument("--nodes", type=int, help="nodes in pond.yaml (default 500; quick 100)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes for the load")
    args = parser.parse_args()
    nodes = args.nodes or (100 if args.quick else 500)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pond-bench-orchestration-"))
    workdir.mkdir(parents=True, exist_ok=True)
    import dagster

    print(f"pond orchestration benchmark: pond.yaml of {nodes} nodes; in {workdir}")
    print(
        f"python {sys.version.split()[0]}, dagster {dagster.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    rows: list[Row] = []
    try:
        print("\n1. pond apply in process (pipeline.load + apply)")
        config = setup(workdir / "inproc", nodes)
        rows += apply_in_process(config)
        print("\n2. pond apply, the CLI (whole process)")
        rows += apply_cli(setup(workdir / "cli", nodes))
        print(f"\n3. the Dagster code location over {nodes} applied nodes")
        rows += code_location(config, args.repeat, nodes)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    rows.append(Row("load average (1 min) at the end", f"{os.getloadavg()[0]:.2f}"))
    summary(rows)


if __name__ == "__main__":
    main()
