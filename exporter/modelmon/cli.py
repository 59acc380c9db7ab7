"""The ``modelmon`` command.

Subcommands: ``demo`` (the walking skeleton end to end, no Prometheus needed),
``baseline build|show``, ``drift`` (the drift exporter), ``sidecar`` (the HTTP
ingest service). Every flag can also be set through an environment variable
``MODELMON_<FLAG>``. The two long-running commands, ``sidecar`` and ``drift``,
declare their settings in one table each and resolve them with
:mod:`modelmon.settings`: flag > ``MODELMON_*`` variable > ``--config.file`` >
default, with the shared ``--web.listen-address`` / ``--web.config.file``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .baseline import Baseline, BaselineError
from .datafiles import TableError, read_table

__all__ = ["main", "build_parser"]


def _csv_list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"MODELMON_{name}", default)


def _cmd_baseline_build(args: argparse.Namespace) -> int:
    categorical = _csv_list(args.categorical)
    data = read_table(args.data, categorical=frozenset(categorical))
    b = Baseline.build(
        data,
        model=args.model,
        model_version=args.model_version,
        categorical=categorical,
        prediction=args.prediction,
        probability=_csv_list(args.probability) or None,
        target=args.target,
        positive=args.positive,
        threshold=args.threshold,
        exclude=_csv_list(args.exclude),
        bins=args.bins,
        max_categories=args.max_categories,
    )
    path = b.save(args.output)
    n_num, n_cat = len(b.numeric_features), len(b.categorical_features)
    print(f"wrote {path}: model {b.model} version {b.model_version}, id {b.id}, {b.rows} rows, "
          f"{n_num} numeric + {n_cat} categorical features")
    return 0


def _cmd_baseline_show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    b = Baseline.load(args.baseline)
    table = Table(title=f"{b.model} version {b.model_version} · baseline {b.id} · {b.rows} rows"
                  + (f" · {b.task}" if b.task else ""))
    for col in ("column", "role", "type", "missing", "detail"):
        table.add_column(col, overflow="fold")
    for row in b.describe():
        table.add_row(*(str(row[k]) for k in ("column", "role", "type", "missing", "detail")))
    Console(width=int(_env("COLUMNS", "120") or 120)).print(table)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelmon",
        description="Prometheus-native monitoring for machine-learning models.")
    parser.add_argument("--version", action="version", version=f"modelmon {__version__}")
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"],
                        help="log level (env MODELMON_LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the end-to-end demo on an embedded data set")
    from .demo import add_arguments as demo_args
    demo_args(demo)
    demo.set_defaults(func=_cmd_demo)

    base = sub.add_parser("baseline", help="build or show a baseline")
    bsub = base.add_subparsers(dest="baseline_command", metavar="ACTION")
    build = bsub.add_parser("build", help="summarise training data (CSV or Parquet) into baseline YAML")
    build.add_argument("data", help="training data: .csv (header row) or .parquet (parquet extra)")
    build.add_argument("--model", required=_env("MODEL") is None, default=_env("MODEL"),
                       help="model name (env MODELMON_MODEL)")
    build.add_argument("--model-version", default=_env("MODEL_VERSION", "1"),
                       help="model version label (default 1)")
    build.add_argument("--prediction", default=_env("PREDICTION"),
                       help="column with the model's predicted class or value")
    build.add_argument("--probability", default=_env("PROBABILITY"),
                       help="score column(s), comma-separated: one for binary, one per class")
    build.add_argument("--target", default=_env("TARGET"), help="ground-truth column")
    build.add_argument("--positive", default=_env("POSITIVE"),
                       help="the positive class of a binary --target (default 1/true when the "
                            "classes are 0/1 or false/true); with one --probability column the "
                            "baseline then stores the score's calibration, from which the drift "
                            "exporter estimates accuracy, precision, recall and F1 before "
                            "labels come")
    build.add_argument("--threshold", type=float,
                       default=float(_env("THRESHOLD")) if _env("THRESHOLD") else None,
                       help="score at or above which the model predicts the positive class, "
                            "for the calibration (default: the --prediction column, else 0.5)")
    build.add_argument("--categorical", default=_env("CATEGORICAL"),
                       help="columns to treat as categorical even when numeric (comma-separated)")
    build.add_argument("--exclude", default=_env("EXCLUDE"),
                       help="columns to leave out (comma-separated)")
    build.add_argument("--bins", type=int, default=int(_env("BINS", "20") or 20),
                       help="buckets per numeric feature (default 20, about 5%% of rows each)")
    build.add_argument("--max-categories", type=int,
                       default=int(_env("MAX_CATEGORIES", "50") or 50),
                       help="categories kept per categorical feature (default 50)")
    build.add_argument("-o", "--output", default=_env("OUTPUT", "baseline.yaml"),
                       help="output file (default baseline.yaml)")
    build.set_defaults(func=_cmd_baseline_build)
    show = bsub.add_parser("show", help="print one row per feature of a baseline file")
    show.add_argument("baseline", help="baseline YAML file")
    show.set_defaults(func=_cmd_baseline_show)
    base.set_defaults(func=lambda a: (base.print_help(), 2)[1])

    try:
        from .drift.cli import add_arguments as drift_args
        from .drift.cli import run as drift_run
    except ImportError:  # pragma: no cover - the drift package is part of modelmon
        pass
    else:
        drift = sub.add_parser("drift", help="run the drift exporter")
        drift_args(drift)
        drift.set_defaults(func=drift_run)
    from .sidecar.cli import add_arguments as sidecar_args
    from .sidecar.cli import run as sidecar_run

    sidecar = sub.add_parser("sidecar", help="run the HTTP sidecar that models post events to")
    sidecar_args(sidecar)
    sidecar.set_defaults(func=sidecar_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (BaselineError, TableError) as exc:
        print(f"modelmon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
