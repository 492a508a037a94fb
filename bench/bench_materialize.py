"""Benchmark of ``pond materialize --all`` on the example pipeline: ONE Dagster run for the
selection (what the command does) against one run per node (what it did before issue 11),
in the same process, on the same definitions and the same kind of instance.

    .venv/bin/python bench/bench_materialize.py              # 5 rounds
    .venv/bin/python bench/bench_materialize.py --repeat 2   # quicker

Each round copies ``pond.yaml`` + ``examples/`` into a fresh folder per mode (a new pond and
a new ``.dagster/`` home, SQLite), then times, for both modes in turn (the order swapped
every other round): the first materialization (every node writes) and a second one
(nothing changed: every node finds its content current). The one-run mode is
``prepare_run`` + ``run_assets`` (the command's code path, without the console);
the per-node mode calls ``dagster.materialize`` once per node, upstream first, on the
same definitions. Last, ``pond materialize --all`` as a process (wall clock, import
included), first and second time. Prints figures only (no asserts).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from pond_pipeline.orchestration.assets import asset_key
from pond_pipeline.orchestration.instance import open_instance
from pond_pipeline.orchestration.run import prepare_run, run_assets
from pond_pipeline.project import pipeline as pipelines

REPO = Path(__file__).resolve().parents[1]
POND_CLI = str(Path(sys.executable).with_name("pond"))
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def copy_example(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(REPO / "pond.yaml", folder / "pond.yaml")
    shutil.copytree(REPO / "examples", folder / "examples")
    return folder


def one_run(folder: Path) -> int:
    """The command's way: one run for every node. Returns the number of runs."""
    pipeline = pipelines.load(folder / "pond.yaml")
    prepared = prepare_run(pipeline, [], everything=True)
    with open_instance(folder) as instance:
        outcomes = run_assets(prepared, instance)
    assert all(o.success for o in outcomes), [o.error for o in outcomes if not o.success]
    return len({o.run_id for o in outcomes})


def run_per_node(folder: Path) -> int:
    """The old way: one ``dagster.materialize`` per node, upstream first."""
    pipeline = pipelines.load(folder / "pond.yaml")
    prepared = prepare_run(pipeline, [], everything=True)
    defs = prepared.definitions
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition | dg.AssetSpec)]
    with open_instance(folder) as instance:
        for path in prepared.paths:
            result = dg.materialize(
                assets,
                instance=instance,
                resources=dict(defs.resources or {}),
                selection=[asset_key(path)],
                raise_on_error=False,
                run_config=QUIET,
            )
            assert result.success, path
    return len(prepared.paths)


def timed(action: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def cli(folder: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("POND", "POND_CONFIG", "DAGSTER_HOME")}
    start = time.perf_counter()
    subprocess.run(
        [POND_CLI, "materialize", "--all"], cwd=folder, env=env, check=True, capture_output=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args()
    os.environ.pop("POND", None)
    os.environ.pop("DAGSTER_HOME", None)
    modes: dict[str, Callable[[Path], int]] = {"one run": one_run, "one run per node": run_per_node}
    figures: dict[tuple[str, str], list[float]] = {}
    runs: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="pond-bench-materialize-") as tmp:
        root = Path(tmp)
        one_run(copy_example(root / "warm-up"))  # imports, entry points, first SQLite setup
        for round_ in range(args.repeat):
            order = list(modes) if round_ % 2 == 0 else list(reversed(modes))
            for name in order:
                folder = copy_example(root / f"{round_}-{name.replace(' ', '-')}")
                for phase in ("first", "second"):
                    seconds, count = timed(lambda f=folder, n=name: modes[n](f))
                    figures.setdefault((name, phase), []).append(seconds)
                    runs[name] = count
        process = [cli(copy_example(root / "cli")), cli(root / "cli")]
    print(
        f"pond materialize --all of the example ({runs['one run per node']} nodes), "
        f"{args.repeat} rounds, median (min-max) wall seconds, in process:"
    )
    for phase in ("first", "second"):
        for name in modes:
            values = figures[(name, phase)]
            print(
                f"  {phase:<6} {name:<17} {statistics.median(values):6.2f} s"
                f"  ({min(values):.2f}-{max(values):.2f})  {runs[name]} Dagster run(s)"
            )
        ratio = statistics.median(figures[("one run per node", phase)]) / statistics.median(
            figures[("one run", phase)]
        )
        print(f"  {phase:<6} per node / one run: {ratio:.2f}x")
    print(
        f"  as a process (`pond materialize --all`): first {process[0]:.2f} s, "
        f"second {process[1]:.2f} s"
    )


if __name__ == "__main__":
    main()
