"""``modelmon demo``: the whole skeleton end to end, with no Prometheus and no network.

1. Generates a seeded loan-application training set and a numpy logistic model.
2. Builds the baseline and serves a Monitor's /metrics on a loopback port.
3. Runs the drift exporter in scrape mode against it, serving its own /metrics.
4. Sends live traffic in phases — normal; a gradual shift in ``credit_score``;
   a pipeline bug (``loan_amount`` in the wrong unit, ×1000, and two
   ``purpose`` categories swapped); a spike of missing ``employment_years`` —
   while a live view shows per-feature drift.
5. Ends with a table of which feature was flagged, when and by which method,
   next to the truth that was injected, and exits 1 when a drifted feature was
   missed or an undrifted one flagged.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from .baseline import Baseline
from .demo_data import CATEGORICAL, NUMERIC, LoanGenerator
from .monitor import Monitor

__all__ = ["run_demo", "add_arguments", "Phase", "PHASES", "DemoResult"]

# A feature is flagged by the drift exporter's verdict against the baseline
# (modelmon_drift_detected: the verdict method's score above its effect floor
# and its null quantile at the window's size), exactly what the shipped
# ModelMonFeatureDrift alert reads; the demo has no drift thresholds of its own.

#: Missing values: flagged as ModelMonMissingValuesSpike's rule does, when the
#: window holds at least MISSING_MIN_COUNT missing values and a Poisson lower
#: bound of their count, ``x - 3 sqrt(x)``, is above the training share plus
#: this many points of the window's events.
MISSING_EXCESS = 0.05
MISSING_MIN_COUNT = 10

Transform = Callable[[dict[str, Any], float], None]


@dataclass(frozen=True)
class Phase:
    name: str
    description: str
    share: float                      # of the run's traffic time
    drifted: frozenset[str]           # the truth: features this phase breaks
    transform: Transform | None = None


def _gradual_credit(f: dict[str, Any], progress: float) -> None:
    # credit_score slides down to 1.2 training standard deviations (~72 points)
    f["credit_score"] = np.clip(f["credit_score"] - 72.0 * min(1.0, 0.25 + progress), 300, 850)


def _pipeline_bug(f: dict[str, Any], progress: float) -> None:
    # a unit change upstream (thousands → units) and two categories swapped
    f["loan_amount"] = f["loan_amount"] * 1000.0
    p = f["purpose"].copy()
    a, b = p == "debt_consolidation", p == "education"
    p[a], p[b] = "education", "debt_consolidation"
    f["purpose"] = p


def _missing_spike(f: dict[str, Any], progress: float) -> None:
    v = f["employment_years"].astype(np.float64)
    v[np.random.default_rng(int(progress * 1e6)).random(v.size) < 0.45] = np.nan
    f["employment_years"] = v


PHASES: tuple[Phase, ...] = (
    Phase("normal", "traffic like the training data", 0.24, frozenset()),
    Phase("gradual shift", "credit_score slides down by up to 1.2σ", 0.28,
          frozenset({"credit_score"}), _gradual_credit),
    Phase("pipeline bug", "loan_amount ×1000; purpose: debt_consolidation ⇄ education", 0.24,
          frozenset({"loan_amount", "purpose"}), _pipeline_bug),
    Phase("missing spike", "45% of employment_years missing", 0.24,
          frozenset({"employment_years"}), _missing_spike),
)


@dataclass
class FeatureFlag:
    feature: str
    first_at: float | None = None       # seconds since the start of traffic
    methods: set[str] = field(default_factory=set)
    false_alarms: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class DemoResult:
    passed: bool
    flags: dict[str, FeatureFlag]
    injected_at: dict[str, float]
    evaluations: int
    problems: list[str]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="short run (under 60 s on 2 cores), as in the test suite")
    p.add_argument("--serve", action="store_true",
                   help="keep the /metrics endpoints up after the run (for a real Prometheus), "
                        "until Ctrl-C")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--rate", type=float, default=None,
                   help="events per second (default 400, quick 400)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of traffic over all phases (default 160, quick 40)")
    p.add_argument("--monitor-port", type=int, default=None,
                   help="port of the Monitor's /metrics (default: free port; 10380 with --serve)")
    p.add_argument("--drift-port", type=int, default=None,
                   help="port of the drift exporter (default: free port; 10381 with --serve)")
    p.add_argument("--plain", action="store_true",
                   help="plain log lines instead of the live view (default when not a terminal)")


def run_demo(args: argparse.Namespace) -> int:
    return 0 if Demo.from_args(args).run().passed else 1


class Demo:
    def __init__(self, *, seed: int = 7, rate: float = 400.0, duration: float = 40.0,
                 window: float = 6.0, interval: float = 1.0, monitor_port: int = 0,
                 drift_port: int = 0, serve: bool = False, plain: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seed, self.rate, self.duration = seed, rate, duration
        self.window, self.interval = window, interval
        self.monitor_port, self.drift_port = monitor_port, drift_port
        self.serve = serve
        self.plain = plain
        self.clock = clock

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> "Demo":
        quick = bool(a.quick)
        return cls(
            seed=a.seed,
            rate=a.rate or 400.0,
            duration=a.duration or (40.0 if quick else 160.0),
            window=6.0 if quick else 15.0,
            interval=1.0 if quick else 2.0,
            monitor_port=a.monitor_port if a.monitor_port is not None else (10380 if a.serve else 0),
            drift_port=a.drift_port if a.drift_port is not None else (10381 if a.serve else 0),
            serve=a.serve,
            plain=True if a.plain else None,
        )

    # ------------------------------------------------------------------------

    def run(self) -> DemoResult:
        from rich.console import Console

        from .drift import DriftScrapeService

        console = Console()
        plain = self.plain if self.plain is not None else not console.is_terminal
        if not console.is_terminal:
            console = Console(width=120)  # logs and CI: do not fold the summary table
        gen = LoanGenerator(self.seed)
        console.print(f"[bold]modelmon demo[/] · seed {self.seed} · {self.rate:.0f} events/s · "
                      f"{self.duration:.0f} s of traffic · drift window {self.window:.0f} s")
        train = gen.training(20_000)
        baseline = Baseline.build(train, model="loan_default", model_version="1",
                                  prediction="decision", probability="p_default",
                                  target="defaulted")
        console.print(f"baseline {baseline.id}: {len(baseline.features)} features "
                      f"({len(baseline.numeric_features)} numeric, "
                      f"{len(baseline.categorical_features)} categorical) from 20,000 rows")

        registry = CollectorRegistry()
        monitor = Monitor(baseline, registry=registry)
        from prometheus_client import start_http_server

        mon_server, mon_thread = start_http_server(self.monitor_port, addr="127.0.0.1",
                                                   registry=registry)
        mon_url = f"http://127.0.0.1:{mon_server.server_port}/metrics"
        service = DriftScrapeService([mon_url], window=self.window, interval=self.interval,
                               min_samples=100, registry=CollectorRegistry())
        _, drift_port = service.serve("127.0.0.1", self.drift_port)
        service.start()
        console.print(f"Monitor /metrics: {mon_url}")
        console.print(f"drift exporter:   http://127.0.0.1:{drift_port}/metrics")
        try:
            result = self._traffic(gen, monitor, registry, service, console, plain)
        finally:
            if not self.serve:
                service.stop()
                mon_server.shutdown()
        self._summary(result, console)
        if self.serve:
            import signal

            def _term(signum: int, frame: Any) -> None:
                raise KeyboardInterrupt

            signal.signal(signal.SIGTERM, _term)
            console.print("[bold]--serve[/]: endpoints stay up and the phases repeat, so a "
                          "Prometheus scraping them sees drift come and go. Ctrl-C to stop.")
            try:
                while True:  # keep traffic flowing: an idle window has no samples to score
                    self._traffic(gen, monitor, registry, service, console, True)
            except KeyboardInterrupt:
                pass
            finally:
                service.stop()
                mon_server.shutdown()
        return result

    # ------------------------------------------------------------------------

    def _traffic(self, gen: LoanGenerator, monitor: Monitor, registry: CollectorRegistry,
                 service: Any, console: Any, plain: bool) -> DemoResult:
        from rich.live import Live

        tick = 0.05
        per_tick = max(1, int(round(self.rate * tick)))
        starts, t = [], 0.0
        for ph in PHASES:
            starts.append(t)
            t += ph.share * self.duration
        ends = starts[1:] + [self.duration]
        flags = {f: FeatureFlag(f) for f in NUMERIC + CATEGORICAL}
        injected_at: dict[str, float] = {}
        active_until: dict[str, float] = {}
        missing_hist: deque[tuple[float, dict[str, float], float]] = deque()
        missing_base = {n: s.missing_fraction for n, s in monitor.models["loan_default"].features.items()}
        problems: list[str] = []
        last_eval = None
        evaluations = 0
        view: dict[str, Any] = {"phase": 0, "progress": 0.0, "scores": {}, "elapsed": 0.0}
        lat_rng = np.random.default_rng(self.seed + 1)

        live = None if plain else Live(self._render(view, flags), console=console,
                                       refresh_per_second=4, transient=False)
        if live is not None:
            live.start()
        t0 = self.clock()
        next_tick = t0
        current_phase = -1
        try:
            while True:
                now = self.clock() - t0
                if now >= self.duration:
                    break
                i = max(k for k in range(len(PHASES)) if starts[k] <= now)
                ph = PHASES[i]
                progress = (now - starts[i]) / max(1e-9, ends[i] - starts[i])
                if i != current_phase:
                    current_phase = i
                    for f in ph.drifted:
                        injected_at.setdefault(f, now)
                    msg = f"{now:6.1f}s  phase {i + 1}/{len(PHASES)}: {ph.name} — {ph.description}"
                    console.print(msg) if plain else live.console.print(msg)  # type: ignore[union-attr]
                for f in ph.drifted:
                    active_until[f] = now
                # --- one tick of traffic -----------------------------------------
                cols = gen.features(per_tick)
                if ph.transform is not None:
                    ph.transform(cols, progress)
                scores = gen.score(cols)
                lat = lat_rng.lognormal(-5.5, 0.4, per_tick)
                lists = {k: v.tolist() for k, v in cols.items()}
                for j in range(per_tick):
                    ev = {k: lists[k][j] for k in lists}
                    ey = ev["employment_years"]
                    if ey != ey:  # NaN from the missing spike: send null, as a client would
                        ev["employment_years"] = None
                    monitor.observe(ev, prediction="reject" if scores[j] > 0.35 else "approve",
                                    probabilities=float(scores[j]), latency_seconds=float(lat[j]))
                # --- read the drift exporter's latest evaluation ------------------
                res = service.latest
                if res is not None and res.timestamp != last_eval:
                    last_eval = res.timestamp
                    evaluations += 1
                    self._judge(res, now, flags, injected_at, active_until, registry,
                                missing_hist, missing_base, view)
                view.update(phase=i, progress=progress, elapsed=now)
                if live is not None:
                    live.update(self._render(view, flags))
                elif evaluations and int(now) % 5 == 0 and view.get("printed") != int(now):
                    view["printed"] = int(now)
                    flagged = sorted(f for f, s in view["scores"].items() if s.get("flag"))
                    console.print(f"{now:6.1f}s  flagged now: {', '.join(flagged) or '-'}")
                next_tick += tick
                time.sleep(max(0.0, next_tick - self.clock()))
        finally:
            if live is not None:
                live.stop()
        for f, fl in flags.items():
            truth = f in injected_at
            if truth and fl.first_at is None:
                problems.append(f"{f}: drift injected at {injected_at[f]:.1f}s was never flagged")
            for at, method in fl.false_alarms:
                problems.append(f"{f}: flagged by {method} at {at:.1f}s with no drift injected")
        if evaluations < 3:
            problems.append(f"only {evaluations} drift evaluations ran")
        return DemoResult(passed=not problems, flags=flags, injected_at=injected_at,
                          evaluations=evaluations, problems=problems)

    def _judge(self, res: Any, now: float, flags: dict[str, FeatureFlag],
               injected_at: dict[str, float], active_until: dict[str, float],
               registry: CollectorRegistry, missing_hist: deque, missing_base: dict[str, float],
               view: dict[str, Any]) -> None:
        """Flag features from one evaluation and score each flag against the truth."""
        scores: dict[str, dict[str, Any]] = {}
        base = res.table("baseline")
        prev = res.table("previous")
        verdicts = res.verdicts("baseline")
        for f in NUMERIC + CATEGORICAL:
            key = ("loan_default", "1", "feature", f)
            row: dict[str, Any] = dict(base.get(key, {}))
            row["prev_psi"] = prev.get(key, {}).get("psi")
            judged = verdicts.get(key)
            row["verdict"] = judged
            scores[f] = row
            row["hits"] = [judged.method] if judged is not None and judged.drifted else []
        # missing-value rate over the same window, from the Monitor's counters
        lab = {"model": "loan_default", "model_version": "1"}
        total = registry.get_sample_value("modelmon_predictions_total", lab) or 0.0
        miss = {f: registry.get_sample_value("modelmon_feature_missing_total",
                                             {**lab, "feature": f}) or 0.0 for f in scores}
        missing_hist.append((now, miss, total))
        while missing_hist and missing_hist[0][0] < now - self.window:
            missing_hist.popleft()
        t_old, miss_old, total_old = missing_hist[0]
        n = total - total_old
        for f, row in scores.items():
            x = miss[f] - miss_old[f]
            row["missing"] = x / n if n > 0 else 0.0
            if x >= MISSING_MIN_COUNT and \
                    x - 3.0 * math.sqrt(x) > (missing_base.get(f, 0.0) + MISSING_EXCESS) * n:
                row["hits"].append("missing_rate")
        # score against the truth: a flag is right while the feature was drifted at
        # any time its window could still see
        horizon = self.window + 2 * self.interval
        for f, row in scores.items():
            row["flag"] = bool(row["hits"])
            if not row["hits"]:
                continue
            fl = flags[f]
            drifted = f in injected_at and injected_at[f] <= now and \
                active_until.get(f, -1e9) >= now - horizon
            if drifted:
                if fl.first_at is None:
                    fl.first_at = now
                fl.methods.update(row["hits"])
            else:
                fl.false_alarms.extend((now, m) for m in row["hits"])
        view["scores"] = scores

    # ------------------------------------------------------------------------

    def _render(self, view: dict[str, Any], flags: dict[str, FeatureFlag]) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        i = view["phase"]
        ph = PHASES[i]
        head = Text.assemble(("phase ", "bold"), f"{i + 1}/{len(PHASES)} ", (ph.name, "bold cyan"),
                             f" — {ph.description}   t={view['elapsed']:.0f}s")
        bar = ProgressBar(total=1.0, completed=view["progress"], width=60)
        table = Table(expand=False, title="drift vs baseline (window "
                      f"{self.window:.0f} s) · flagged by the verdict (score above its "
                      "threshold: effect floor and null quantile at this window's size) or "
                      f"missing +{MISSING_EXCESS:.0%} beyond noise")
        for c in ("feature", "method", "score", "threshold", "psi", "js", "psi vs prev",
                  "missing", "flag"):
            table.add_column(c, justify="right" if c not in ("feature", "method") else "left")

        def fmt(v: Any, spec: str = ".3f") -> str:
            return "·" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

        for f in NUMERIC + CATEGORICAL:
            row = view["scores"].get(f, {})
            judged = row.get("verdict")
            flag = ", ".join(row.get("hits", [])) if row.get("flag") else ""
            style = "bold red" if flag else ""
            table.add_row(f, judged.method if judged else "too few samples",
                          fmt(judged.score if judged else None),
                          fmt(judged.threshold if judged else None),
                          fmt(row.get("psi")), fmt(row.get("jensen_shannon")),
                          fmt(row.get("prev_psi")), fmt(row.get("missing"), ".1%"),
                          Text(flag, style=style))
        return Group(head, bar, table)

    def _summary(self, result: DemoResult, console: Any) -> None:
        from rich.table import Table

        table = Table(title="what was injected, and what modelmon flagged")
        for c in ("feature", "injected (truth)", "first flagged", "delay", "by", "verdict"):
            table.add_column(c)
        for f, fl in result.flags.items():
            inj = result.injected_at.get(f)
            if inj is None and fl.first_at is None and not fl.false_alarms:
                verdict = "[green]clean, not flagged[/]"
            elif inj is not None and fl.first_at is not None:
                verdict = "[green]caught[/]"
            elif inj is not None:
                verdict = "[red]MISSED[/]"
            else:
                verdict = "[red]FALSE ALARM[/]"
            phase = next((p.name for p in PHASES if f in p.drifted), "")
            table.add_row(
                f,
                f"{phase} at {inj:.1f}s" if inj is not None else "-",
                f"{fl.first_at:.1f}s" if fl.first_at is not None else "-",
                f"{fl.first_at - inj:.1f}s" if fl.first_at is not None and inj is not None else "-",
                ", ".join(sorted(fl.methods | {m for _, m in fl.false_alarms})) or "-",
                verdict)
        console.print(table)
        console.print(f"{result.evaluations} drift evaluations")
        if result.passed:
            console.print("[bold green]PASS[/]: every injected drift was flagged, and nothing else.")
        else:
            console.print("[bold red]FAIL[/]:")
            for p in result.problems:
                console.print(f"  - {p}")


