"""Drift computation benchmark: modelmon.stats on bucket counts vs the usual tools.

    python bench/drift.py             # ~10 s without Evidently / NannyML
    python bench/drift.py --quick     # fewer repeats, noisier

Workload (seeded): 20 numeric features (normal, lognormal, uniform, exponential,
gamma, Student t, bimodal, ...), 100,000 reference (training) rows and a
10,000-row current window in which some features are shifted or rescaled. Each
feature gets 20 buckets: 19 ``le`` bounds at the training quantiles
(``modelmon.stats.quantile_edges``) plus ``+Inf``. The reference counts are
binned once, outside the timing: in modelmon they come from the baseline file.

Lines (``time.perf_counter``, median of many repeats, one process):

a. binning the 10k window: ``bucket_counts`` per feature;
b. ``drift_scores`` on the (20, 20) count arrays: every method at once;
c. ``drift_scores`` on 10,000 rows x 20 buckets, one vectorised call;
d. SciPy on the raw samples, a Python loop over the 20 features:
   ``ks_2samp`` + ``wasserstein_distance`` (raw) + ``jensenshannon`` on the
   bucket counts; and SciPy on the same counts, per feature;
e. Evidently ``DataDriftPreset`` and NannyML ``UnivariateDriftCalculator`` on
   the raw DataFrames, when installed (``pip install -e '.[bench]'``).

The ratio column is each line's time over ours for the same job: lines on raw
samples are compared with a + b (bin the window, then score it), the SciPy line
on counts with b.

A last table shows what binning costs in accuracy: the binned KS statistic and
normed Wasserstein distance against the exact ones from the raw samples.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

# The scripts switch third-party telemetry off themselves (see bench/README.md).
for _k, _v in (("DO_NOT_TRACK", "1"), ("ITERATIVE_DO_NOT_TRACK", "1"),
               ("NML_DISABLE_USAGE_LOGGING", "1"), ("WHYLOGS_NO_ANALYTICS", "True")):
    os.environ.setdefault(_k, _v)

import numpy as np
import scipy
import scipy.stats
from scipy.spatial.distance import jensenshannon

from modelmon.stats import bucket_counts, drift_scores, quantile_edges

SEED = 20240601
N_REF = 100_000
N_CUR = 10_000
N_FEATURES = 20
BINS = 20
N_ROWS_VECTOR = 10_000


# ---------------------------------------------------------------------------
# Workload


def make_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reference (N_REF, 20) and current (N_CUR, 20) samples; descriptions."""
    gens: list[tuple[str, Callable[[int, float], np.ndarray]]] = [
        ("normal", lambda n, s: rng.normal(s, 1.0, n)),
        ("lognormal", lambda n, s: rng.lognormal(s, 0.8, n)),
        ("uniform", lambda n, s: rng.uniform(s, 1.0 + s, n)),
        ("exponential", lambda n, s: rng.exponential(1.0 + s, n)),
        ("gamma", lambda n, s: rng.gamma(2.0 + s, 1.5, n)),
        ("student_t", lambda n, s: rng.standard_t(4, n) + s),
        ("bimodal", lambda n, s: np.where(rng.random(n) < 0.3 + s / 4, rng.normal(-2, 0.5, n),
                                          rng.normal(2, 0.7, n))),
        ("beta", lambda n, s: rng.beta(2.0 + s, 5.0, n)),
    ]
    ref_cols, cur_cols, names = [], [], []
    for j in range(N_FEATURES):
        kind, gen = gens[j % len(gens)]
        shift = 0.3 if j % 4 == 1 else (1.0 if j % 7 == 3 else 0.0)  # 7 shifted features
        ref_cols.append(gen(N_REF, 0.0))
        cur_cols.append(gen(N_CUR, shift))
        names.append(f"f{j:02d}_{kind}{'_shifted' if shift else ''}")
    return np.column_stack(ref_cols), np.column_stack(cur_cols), names


# ---------------------------------------------------------------------------
# Timing


def timeit(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """(median, best) seconds of ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    gc.collect()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds:,.2f} s"


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------------------
# Third-party lines


def run_evidently(ref_df: Any, cur_df: Any) -> Callable[[], Any]:
    """A callable running Evidently's DataDriftPreset, new (>= 0.7) or legacy API."""
    try:
        from evidently import Report  # type: ignore[import-not-found]
        from evidently.presets import DataDriftPreset  # type: ignore[import-not-found]

        def run() -> Any:
            return Report([DataDriftPreset()]).run(current_data=cur_df, reference_data=ref_df)
    except ImportError:
        # legacy API (evidently < 0.7)
        from evidently.metric_preset import (  # type: ignore[import-not-found,no-redef]
            DataDriftPreset,
        )
        from evidently.report import Report  # type: ignore[import-not-found,no-redef]

        def run() -> Any:
            report = Report(metrics=[DataDriftPreset()])
            report.run(reference_data=ref_df, current_data=cur_df)
            return report.as_dict()
    return run


def run_nannyml(ref_df: Any, cur_df: Any) -> Callable[[], Any]:
    import nannyml as nml  # type: ignore[import-not-found]

    columns = list(ref_df.columns)

    def run() -> Any:
        calc = nml.UnivariateDriftCalculator(
            column_names=columns,
            continuous_methods=["kolmogorov_smirnov", "jensen_shannon", "wasserstein", "hellinger"],
            chunk_size=N_CUR,
        )
        calc.fit(ref_df)
        return calc.calculate(cur_df)
    return run


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (noisier), ~3 s")
    ap.add_argument("--repeats", type=int, default=None,
                    help="repeats of the (20, 20) drift_scores line (default 3000, quick 500)")
    ap.add_argument("--no-third-party", action="store_true",
                    help="skip Evidently and NannyML even when installed")
    args = ap.parse_args(argv)
    quick = args.quick
    rep_small = args.repeats or (500 if quick else 3000)
    rep_bin = 50 if quick else 300
    rep_vec = 10 if quick else 40
    rep_raw = 2 if quick else 7
    rep_third = 1 if quick else 3

    t_start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    ref, cur, names = make_data(rng)
    edges = np.stack([quantile_edges(ref[:, j], bins=BINS) for j in range(N_FEATURES)])
    assert edges.shape == (N_FEATURES, BINS - 1), edges.shape
    ref_counts = np.stack([bucket_counts(edges[j], ref[:, j]) for j in range(N_FEATURES)])

    def bin_window() -> np.ndarray:
        return np.stack([bucket_counts(edges[j], cur[:, j]) for j in range(N_FEATURES)])

    cur_counts = bin_window()
    assert ref_counts.shape == cur_counts.shape == (N_FEATURES, BINS)
    assert (cur_counts.sum(axis=1) == N_CUR).all()

    # 10,000 rows: every feature's reference repeated, current windows drawn
    # from a mix of the reference and the observed window (varied drift).
    reps = N_ROWS_VECTOR // N_FEATURES
    big_ref = np.tile(ref_counts, (reps, 1)).astype(np.float64)
    big_edges = np.tile(edges, (reps, 1))
    mix = rng.random((N_ROWS_VECTOR, 1))
    feature = np.arange(N_ROWS_VECTOR) % N_FEATURES
    probs = mix * (ref_counts / N_REF)[feature] + (1 - mix) * (cur_counts / N_CUR)[feature]
    big_cur = rng.multinomial(N_CUR, probs / probs.sum(axis=1, keepdims=True)).astype(np.float64)

    rows: list[tuple[str, float, float, float | None]] = []  # work, median, best, ours
    notes: list[str] = []

    # (a) binning the window
    t_bin, b_bin = timeit(bin_window, rep_bin)
    rows.append((f"a. bin the {N_CUR:,}-row window, 20 features (`bucket_counts`)",
                 t_bin, b_bin, None))

    # (b) drift_scores on (20, 20)
    t_small, b_small = timeit(lambda: drift_scores(ref_counts, cur_counts, edges), rep_small, 10)
    rows.append(("b. `drift_scores`, (20, 20) counts, all 7 methods", t_small, b_small, None))
    ours_e2e = t_bin + t_small
    rows.append(("a + b: ours, window to all scores", ours_e2e, b_bin + b_small, None))

    # (c) 10,000 rows
    t_vec, b_vec = timeit(lambda: drift_scores(big_ref, big_cur, big_edges), rep_vec, 2)
    rows.append((f"c. `drift_scores`, ({N_ROWS_VECTOR:,}, 20) counts, one call "
                 f"({t_vec / N_ROWS_VECTOR * 1e6:.2f} µs/row)", t_vec, b_vec, None))
    t_vec1, b_vec1 = timeit(lambda: drift_scores(big_ref, big_cur, edges[0]), rep_vec, 2)
    rows.append(("c'. same, one shared edges row", t_vec1, b_vec1, None))

    # (d) scipy on raw samples, per feature
    def scipy_raw() -> list[tuple[float, float, float]]:
        out = []
        for j in range(N_FEATURES):
            ks = scipy.stats.ks_2samp(ref[:, j], cur[:, j])
            wd = scipy.stats.wasserstein_distance(ref[:, j], cur[:, j])
            js = jensenshannon(bucket_counts(edges[j], ref[:, j]),
                               bucket_counts(edges[j], cur[:, j]), base=2)
            out.append((ks.statistic, wd, js))
        return out

    t_raw, b_raw = timeit(scipy_raw, rep_raw)
    rows.append(("d. SciPy on raw samples, loop over 20 features: `ks_2samp` + "
                 "`wasserstein_distance` + `jensenshannon` (histograms)", t_raw, b_raw, ours_e2e))

    # (d') scipy on the same counts, per feature
    placement = np.concatenate([edges[:, :1] - (edges[:, 1:2] - edges[:, :1]) / 2,
                                (edges[:, :-1] + edges[:, 1:]) / 2,
                                edges[:, -1:] + (edges[:, -1:] - edges[:, -2:-1]) / 2], axis=1)

    def scipy_counts() -> None:
        for j in range(N_FEATURES):
            r, c = ref_counts[j], cur_counts[j]
            jensenshannon(r, c, base=2)
            scipy.stats.chisquare(c, r / r.sum() * c.sum())
            scipy.stats.wasserstein_distance(placement[j], placement[j], r, c)

    t_sc, b_sc = timeit(scipy_counts, max(rep_small // 10, 20), 2)
    rows.append(("d'. SciPy on the (20, 20) counts, loop: `jensenshannon` + `chisquare` + "
                 "`wasserstein_distance` (3 of our 7)", t_sc, b_sc, t_small))

    # (e) Evidently, NannyML
    third: list[tuple[str, str, Callable[[Any, Any], Callable[[], Any]], str]] = [
        ("evidently", "e. Evidently {v} `DataDriftPreset` on the raw DataFrames", run_evidently,
         "evidently"),
        ("nannyml", "e. NannyML {v} `UnivariateDriftCalculator` (KS, JS, Wasserstein, Hellinger)",
         run_nannyml, "nannyml"),
    ]
    if args.no_third_party:
        notes.append("Evidently, NannyML: skipped (--no-third-party)")
    else:
        try:
            import pandas as pd
        except ImportError:
            pd = None
            notes.append("Evidently, NannyML: skipped, pandas not installed")
        if pd is not None:
            ref_df = pd.DataFrame(ref, columns=names)
            cur_df = pd.DataFrame(cur, columns=names)
            for module, label, factory, dist in third:
                if importlib.util.find_spec(module) is None:
                    notes.append(f"{dist}: not installed (pip install -e '.[bench]' or "
                                 f"pip install {dist}); line skipped")
                    continue
                try:
                    __import__(module)
                except Exception as exc:  # installed but broken, e.g. against pandas 3
                    notes.append(f"{dist} {version(dist)}: installed but fails to import "
                                 f"({type(exc).__name__}: {exc}); line skipped")
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fn = factory(ref_df, cur_df)
                        t_3, b_3 = timeit(fn, rep_third, 1)
                    rows.append((label.format(v=version(dist)), t_3, b_3, ours_e2e))
                except Exception as exc:  # report, never crash the benchmark
                    notes.append(f"{dist} {version(dist)}: failed ({type(exc).__name__}: {exc}); "
                                 "line skipped")

    # ---- output ----
    print("# modelmon drift benchmark\n")
    print(f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs. {N_FEATURES} numeric features, "
          f"{BINS} buckets, {N_REF:,} reference rows, {N_CUR:,}-row window, seed {SEED}.\n")
    print("| work | time (median) | best | ratio vs ours |")
    print("|---|---:|---:|---:|")
    for work, med, best, ours in rows:
        ratio = "" if ours is None else f"{med / ours:,.0f}×" if med / ours >= 10 else \
            f"{med / ours:,.1f}×"
        print(f"| {work} | {fmt_time(med)} | {fmt_time(best)} | {ratio} |")
    print()
    print("Ratio: the line's median over ours for the same job (raw-sample lines vs a + b; "
          "the counts line vs b).")
    for note in notes:
        print(f"- {note}")

    # ---- accuracy of binning ----
    scores = drift_scores(ref_counts, cur_counts, edges)
    raw = scipy_raw()
    ks_raw = np.array([x[0] for x in raw])
    w_raw = np.array([x[1] for x in raw]) / ref.std(axis=0)
    js_raw = np.array([x[2] for x in raw])
    print("\n## What binning costs (ours on 20 buckets vs exact on the raw samples)\n")
    print("| score | median abs difference | max abs difference | exact range |")
    print("|---|---:|---:|---:|")
    for label, binned, exact in (
        ("KS statistic (binned: a lower bound)", scores["ks"], ks_raw),
        ("Wasserstein / reference std (open end buckets sit at one point)",
         scores["wasserstein_normed"], w_raw),
        ("Jensen–Shannon (same counts both sides: must be ~0)", scores["jensen_shannon"], js_raw),
    ):
        diff = np.abs(np.asarray(binned) - exact)
        print(f"| {label} | {np.median(diff):.2g} | {diff.max():.2g} | "
              f"{exact.min():.4f} – {exact.max():.4f} |")
    drifted = [n for n, p in zip(names, np.asarray(scores["ks_pvalue"])) if p < 0.01]
    print(f"\nKS p < 0.01 on {len(drifted)} of {N_FEATURES} features: {', '.join(drifted)}")
    print(f"\nTotal run time {time.perf_counter() - t_start:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
