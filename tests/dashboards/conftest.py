"""A real Prometheus that holds every modelmon metric, for the dashboard tests.

Real parts only, all on loopback: three sidecars fed seeded traffic with ids and labels
(``loan`` version 1, a binary classifier with a score output, calibration and segments;
``loan`` version 2; ``price`` version 1, a regressor), the drift exporter in query mode,
and a real Prometheus that scrapes all four every second and evaluates the shipped rule
files with every duration divided by 360 (``shortened`` of the alerting end-to-end test),
so that alerts fire within seconds.

The scenario, in seconds since the traffic began (``Populated.start``):

* 0 s, normal traffic: events like the training data, their labels about a second later
  (most of them; some never come and their predictions expire after the 4 s join TTL;
  some labels carry ids that were never posted), label timestamps spread from minutes
  to days after the prediction.
* ``DRIFT_AFTER`` s, drift: ``credit_score`` drops by 2.5 training standard deviations
  (PSI against the baseline far above 0.5, many values below the training minimum),
  ``loan_amount`` x1000 on 5 % of the events, 30 % of ``region`` in an unseen category
  (``__other__``), 30 % of ``employment_years`` missing, unknown feature names, events
  without ``age`` (missing_required), events rejected for a wrong type, a non-finite
  number, an undocumented field and a malformed NDJSON line, slower inference; the
  relation between score and outcome flips (concept drift: the error rate of the
  labelled predictions jumps from about 0.25 to about 0.75, which Page-Hinkley and ADWIN
  detect); the price model's error grows.
* The drifted traffic keeps running in the background until the fixture ends, so every
  rate stays non-zero while the tests query.
* Throughout, ``garden_area`` of ``price`` (a flat with a garden: 4 % of the events, as in
  training) stays below the drift exporter's ``MIN_SAMPLES`` in every window: its window
  samples are exported but no verdict ("too few samples").

Everything random is seeded; only timing varies.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from modelmon import Baseline
from modelmon.catalogue import CATALOGUE, series_names
from modelmon.demo_data import LoanGenerator
from modelmon.drift import DriftQueryService
from modelmon.monitor.joinstore import MemoryJoinStore
from modelmon.monitor import Segment

from ..conftest import Prometheus, free_port, require_binary
from ..sidecar.conftest import Live, start_sidecar
from ..alerts.test_alerting_e2e import shortened

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = ("modelmon-rules.yaml", "modelmon-labels.rules.yml", "modelmon-drift.rules.yml")

#: Seconds between two traffic ticks (each posts one batch per model).
TICK = 0.2
#: Labels of a tick's predictions are posted this many ticks later.
LABEL_LAG_TICKS = 5
#: Seconds of normal traffic before the drift.
DRIFT_AFTER = 12.0
#: Join TTL of the sidecars: predictions never labelled expire after it.
JOIN_TTL = 4.0
#: Drift exporter window (seconds); its previous window needs twice as much traffic.
DRIFT_WINDOW = 15
#: Scaled-down rule durations (``shortened(path, RULE_SCALE)``).
RULE_SCALE = 360
#: The drift exporter's --min-samples: loan 1 (200 events a second) passes it in about a
#: second, ``garden_area`` (about 4 a second) never.
MIN_SAMPLES = 200
#: Share of the flats with a garden (``garden_area`` missing for the others).
GARDEN_SHARE = 0.04

REGIONS = ("northeast", "midwest", "south", "west")
CITIES = ("paris", "lyon", "lille", "nice")
_CITY_FACTOR = {"paris": 1.6, "lyon": 1.1, "lille": 0.9, "nice": 1.3}

#: Dashboard variable values the panel tests fill in, one dict per scenario.
SCENARIOS: tuple[dict[str, str], ...] = (
    {"name": "loan-numeric", "model": "loan", "model_version": "1", "feature": "credit_score",
     "output": "p_default", "segment": "all", "window": "1h"},
    {"name": "loan-categorical", "model": "loan", "model_version": "1", "feature": "region",
     "output": "p_default", "segment": "all", "window": "1h"},
    {"name": "loan-segment", "model": "loan", "model_version": "1", "feature": "credit_score",
     "output": "p_default", "segment": "region=south", "window": "1h"},
    {"name": "loan-v2", "model": "loan", "model_version": "2", "feature": "employment_years",
     "output": "p_default", "segment": "all", "window": "1h"},
    {"name": "price", "model": "price", "model_version": "1", "feature": "area",
     "output": "price_estimate", "segment": "city=paris", "window": "1h"},
    {"name": "price-sparse", "model": "price", "model_version": "1", "feature": "garden_area",
     "output": "price_estimate", "segment": "city=paris", "window": "1h"},
)


# --- models ----------------------------------------------------------------------------

def loan_training(seed: int, n: int) -> dict[str, np.ndarray]:
    """LoanGenerator's training set with a yes/no decision and target (so the baseline
    gets a calibration table: prediction classes equal to the target's)."""
    t = LoanGenerator(seed).training(n)
    t["default"] = np.where(t["p_default"] > 0.35, "yes", "no")
    t["defaulted"] = np.where(t["defaulted"] == 1, "yes", "no")
    del t["decision"]
    return t


def loan_baseline(version: str, seed: int) -> Baseline:
    return Baseline.build(loan_training(seed, 8000), model="loan", model_version=version,
                          prediction="default", probability="p_default", target="defaulted",
                          positive="yes", bins=10)


def price_rows(rng: np.random.Generator, n: int, drifted: bool = False) -> dict[str, np.ndarray]:
    """Flats: area, rooms, city, age, garden area (most have none: missing); the model's
    estimate and the sale price."""
    area = np.round(rng.lognormal(4.4, 0.35, n) * (1.6 if drifted else 1.0), 1)
    rooms = (rng.poisson(2.0, n) + 1).astype(float)
    city = rng.choice(CITIES, n, p=[0.4, 0.25, 0.2, 0.15])
    age = np.round(rng.gamma(2.0, 15.0, n), 1)
    factor = np.array([_CITY_FACTOR[c] for c in city])
    value = 3000.0 * area * factor + 8000.0 * rooms - 400.0 * age
    estimate = np.round(value * rng.lognormal(0.0, 0.08, n), 0)
    # concept drift: the market moved, the model did not
    sale = np.round(value * (1.4 if drifted else 1.0) * rng.lognormal(0.0, 0.08, n), 0)
    garden = np.where(rng.random(n) < GARDEN_SHARE, np.round(rng.gamma(3.0, 30.0, n), 1),
                      np.nan)
    return {"area": area, "rooms": rooms, "city": city, "age_years": age,
            "garden_area": garden, "price_estimate": estimate, "sale_price": sale}


def price_baseline() -> Baseline:
    return Baseline.build(price_rows(np.random.default_rng(201), 6000), model="price",
                          model_version="1", prediction="price_estimate", target="sale_price",
                          bins=10)


# --- traffic ---------------------------------------------------------------------------

def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return None if math.isnan(f) else f
    if isinstance(v, np.integer):
        return int(v)
    return str(v)


_NONFINITE = "__NONFINITE__"


def _json(obj: Any) -> bytes:
    # a number JSON can write but not hold in a double: rejected as non_finite
    return json.dumps(obj).replace(f'"{_NONFINITE}"', "1e400").encode()


class LoanStream:
    """Seeded loan events with ids, and the labels of most of them."""

    def __init__(self, version: str, seed: int, per_tick: int) -> None:
        self.model, self.version, self.per_tick = "loan", version, per_tick
        self.gen = LoanGenerator(seed)
        self.rng = np.random.default_rng(seed + 1)
        self.seq = 0

    def tick(self, now: float, drifted: bool) -> tuple[bytes, list[dict[str, Any]], bytes | None]:
        n, rng = self.per_tick, self.rng
        f = self.gen.features(n)
        if drifted:
            f["credit_score"] = f["credit_score"] - 150.0
            loan = f["loan_amount"].astype(np.float64)
            loan[rng.random(n) < 0.05] *= 1000.0
            f["loan_amount"] = loan
            region = f["region"].astype(object)
            region[rng.random(n) < 0.3] = "atlantis"
            f["region"] = region
            emp = f["employment_years"].astype(np.float64)
            emp[rng.random(n) < 0.3] = np.nan
            f["employment_years"] = emp
        p = self.gen.score(f)
        predicted = np.where(p > 0.35, "yes", "no")
        # ground truth: calibrated before the drift, the relation flipped after it
        actual = np.where(rng.random(n) < ((1.0 - p) if drifted else p), "yes", "no")
        latency = rng.lognormal(math.log(0.02 if drifted else 0.004), 0.6, n)
        delays = rng.lognormal(math.log(3600.0), 1.5, n)
        labelled = rng.random(n) < 0.88  # the others expire after the join TTL
        quirk = rng.random(n)
        events: list[dict[str, Any]] = []
        labels: list[dict[str, Any]] = []
        for i in range(n):
            self.seq += 1
            eid = f"loan{self.version}-{self.seq}"
            feats = {k: _plain(v[i]) for k, v in f.items()}
            if drifted and quirk[i] < 0.05:
                feats["colour"] = "red"  # unknown feature: accepted with a warning
            elif drifted and quirk[i] < 0.08:
                del feats["age"]  # never missing in training: missing_required
            events.append({"id": eid, "timestamp": now, "features": feats,
                           "prediction": str(predicted[i]),
                           "probabilities": {"p_default": round(float(p[i]), 6)},
                           "latency_seconds": round(float(latency[i]), 6)})
            if labelled[i]:
                labels.append({"id": eid, "label": str(actual[i]),
                               "timestamp": now + float(delays[i])})
        labels.append({"id": f"loan{self.version}-ghost-{self.seq}", "label": "no"})
        ndjson = None
        if drifted:
            base = {k: _plain(v[0]) for k, v in f.items()}
            events += [
                {"features": {**base, "age": "forty"}},                  # wrong_type
                {"features": {**base, "income": _NONFINITE}},            # non_finite
                {"features": base, "bogus": 1},                          # invalid_field
            ]
            ndjson = (json.dumps({"features": base}) + "\n" + '{"features": {"age": 50\n').encode()
        return _json({"events": events}), labels, ndjson


class PriceStream:
    """Seeded flat-price events with ids and their (numeric) labels."""

    model, version = "price", "1"

    def __init__(self, seed: int, per_tick: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.per_tick = per_tick
        self.seq = 0

    def tick(self, now: float, drifted: bool) -> tuple[bytes, list[dict[str, Any]], bytes | None]:
        n, rng = self.per_tick, self.rng
        rows = price_rows(rng, n, drifted)
        latency = rng.lognormal(math.log(0.01), 0.5, n)
        delays = rng.lognormal(math.log(86400.0), 1.0, n)
        labelled = rng.random(n) < 0.9
        events: list[dict[str, Any]] = []
        labels: list[dict[str, Any]] = []
        for i in range(n):
            self.seq += 1
            eid = f"price-{self.seq}"
            feats = {k: _plain(rows[k][i])
                     for k in ("area", "rooms", "city", "age_years", "garden_area")}
            if drifted and i == 0:
                feats["rooms"] = None  # missing
            events.append({"id": eid, "timestamp": now, "features": feats,
                           "prediction": float(rows["price_estimate"][i]),
                           "latency_seconds": round(float(latency[i]), 6)})
            if labelled[i]:
                labels.append({"id": eid, "label": float(rows["sale_price"][i]),
                               "timestamp": now + float(delays[i])})
        labels.append({"id": f"price-ghost-{self.seq}", "label": 1.0})
        if drifted:
            events.append({"features": {"area": "big", "rooms": 2.0, "city": "paris",
                                        "age_years": 3.0}})  # wrong_type
        return _json({"events": events}), labels, None


class Traffic:
    """Posts one batch per stream every ``TICK`` s (and their labels ``LABEL_LAG_TICKS``
    ticks later) until stopped; ``drifted`` switches every stream to its drifted data.

    Also asks the sidecars for a model that does not exist (404), the model list and the
    health endpoints, so every request series moves. Unexpected replies are kept in
    ``errors``.
    """

    def __init__(self, routes: list[tuple[str, Any]]) -> None:
        self.routes = routes
        self.drifted = False
        self.ticks = 0
        self.errors: list[str] = []
        self._due: deque[tuple[int, str, str, bytes]] = deque()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="dashboard-traffic", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _check(self, what: str, r: requests.Response, status: int = 200) -> None:
        if r.status_code != status and len(self.errors) < 50:
            self.errors.append(f"{what}: {r.status_code} {r.text[:300]}")

    def _run(self) -> None:
        http = requests.Session()
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self._tick(http)
            except requests.RequestException as e:  # pragma: no cover - reported by the fixture
                if len(self.errors) < 50:
                    self.errors.append(f"request failed: {e}")
            self.ticks += 1
            next_at += TICK
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                break
        http.close()

    def _tick(self, http: requests.Session) -> None:
        now = time.time()
        drifted = self.drifted
        for url, stream in self.routes:
            body, labels, ndjson = stream.tick(now, drifted)
            events_url = f"{url}/v1/models/{stream.model}/events"
            self._check(events_url, http.post(events_url, data=body, timeout=10,
                                              headers={"Content-Type": "application/json"}))
            if ndjson is not None:
                self._check(events_url, http.post(
                    events_url, data=ndjson, timeout=10,
                    headers={"Content-Type": "application/x-ndjson"}))
            self._due.append((self.ticks + LABEL_LAG_TICKS, url, stream.model,
                              json.dumps({"labels": labels}).encode()))
        while self._due and self._due[0][0] <= self.ticks:
            _, url, model, body = self._due.popleft()
            labels_url = f"{url}/v1/models/{model}/labels"
            self._check(labels_url, http.post(labels_url, data=body, timeout=10,
                                              headers={"Content-Type": "application/json"}))
        if self.ticks % 5 == 0:
            for url in {u for u, _ in self.routes}:
                self._check("unknown model", http.post(
                    f"{url}/v1/models/no_such_model/events", data=b'{"events": []}',
                    headers={"Content-Type": "application/json"}, timeout=10), 404)
                self._check("models", http.get(f"{url}/v1/models", timeout=10))
                self._check("healthy", http.get(f"{url}/-/healthy", timeout=10))
                self._check("ready", http.get(f"{url}/-/ready", timeout=10))

    def stop(self) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(10)


# --- the fixture -----------------------------------------------------------------------

@dataclass
class Populated:
    """What the populated-Prometheus fixture yields."""

    prom: Prometheus
    #: Unix time at which the traffic began.
    start: float
    #: Unix time at which the drift began.
    drift_start: float
    #: Dashboard variable values, one dict per scenario (``name`` names it).
    scenarios: list[dict[str, str]]
    traffic: Traffic
    sidecars: dict[str, Live] = field(default_factory=dict)
    #: (what the fixture waited for, seconds since ``start`` when it was there)
    timeline: list[tuple[str, float]] = field(default_factory=list)


def _value(res: list[dict]) -> float:
    return float(res[0]["value"][1]) if res else math.nan


def _present(res: list[dict]) -> bool:
    return bool(res)


def _positive(res: list[dict]) -> bool:
    return bool(res) and _value(res) > 0


class _Waiter:
    def __init__(self, prom: Prometheus, traffic: Traffic, log: Path, start: float) -> None:
        self.prom, self.traffic, self.log, self.start = prom, traffic, log, start
        self.timeline: list[tuple[str, float]] = []

    def __call__(self, what: str, expr: str, predicate: Any = _positive,
                 timeout: float = 60.0) -> list[dict]:
        try:
            res = self.prom.wait_for(expr, predicate, timeout=timeout)
            self.timeline.append((what, round(time.time() - self.start, 1)))
            return res
        except AssertionError as e:
            raise AssertionError(
                f"populated Prometheus: {what} never happened ({e}); traffic errors: "
                f"{self.traffic.errors[:5]}; Prometheus log tail: "
                f"{self.log.read_text(errors='replace')[-1500:] if self.log.exists() else ''}"
            ) from None


def expected_series() -> frozenset[str]:
    """Every series name the catalogue's metrics expose (a histogram's ``_bucket``,
    ``_sum`` and ``_count``, never its bare name)."""
    return series_names() - {m.name for m in CATALOGUE if m.type == "histogram"}


def _missing_families(prom: Prometheus) -> set[str]:
    present = {r["metric"]["__name__"]
               for r in prom.query('group by (__name__) ({__name__=~"modelmon_.+"})')}
    return set(expected_series()) - present


@pytest.fixture(scope="package")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Populated]:
    """A real Prometheus that scraped sidecars fed with drifted, labelled traffic and the
    drift exporter, with the shipped rules (shortened) evaluated and a ModelMon alert
    firing for ``loan``; the traffic keeps running until the last test of this package
    (package scope: the load does not outlive the dashboard tests)."""
    binary = require_binary("prometheus")
    work = tmp_path_factory.mktemp("dashboards-prom")
    rules = []
    for name in RULE_FILES:
        path = work / name
        path.write_text(yaml.safe_dump(shortened(REPO / "alerts" / name, RULE_SCALE)))
        rules.append(path)
    with contextlib.ExitStack() as stack:
        segments = {"loan": [Segment("region", values=REGIONS), Segment("age", bins=(30, 50))]}
        loan1 = start_sidecar([loan_baseline("1", 101)], app_kwargs={
            "segments": segments,
            "join_store": MemoryJoinStore(ttl_seconds=JOIN_TTL)})
        stack.callback(loan1.server.stop)
        stack.callback(loan1.http.close)
        # a small join store: at most 6 ticks x 15 predictions wait for labels that come,
        # plus those whose labels never come: these, the oldest, are evicted (reason="cap")
        loan2 = start_sidecar([loan_baseline("2", 102)], app_kwargs={
            "segments": {"loan": [Segment("region", values=REGIONS)]},
            "join_store": MemoryJoinStore(ttl_seconds=JOIN_TTL, max_rows=100)})
        stack.callback(loan2.server.stop)
        stack.callback(loan2.http.close)
        price = start_sidecar([price_baseline()], app_kwargs={
            "segments": {"price": [Segment("city", values=CITIES)]},
            "join_store": MemoryJoinStore(ttl_seconds=JOIN_TTL)})
        stack.callback(price.server.stop)
        stack.callback(price.http.close)
        exporter_port = free_port()
        prom = Prometheus(binary, work / "prom",
                          [lv.url.removeprefix("http://") for lv in (loan1, loan2, price)]
                          + [f"127.0.0.1:{exporter_port}"], rule_files=rules)
        stack.callback(prom.stop)
        svc = DriftQueryService(prom.url, window=DRIFT_WINDOW, interval=1,
                                min_samples=MIN_SAMPLES)
        svc.serve("127.0.0.1", exporter_port)
        stack.callback(svc.stop)
        traffic = Traffic([(loan1.url, LoanStream("1", 301, 40)),
                           (loan2.url, LoanStream("2", 302, 15)),
                           (price.url, PriceStream(303, 20))])
        start = time.time()
        traffic.start()
        stack.callback(traffic.stop)
        svc.start()
        wait = _Waiter(prom, traffic, work / "prom" / "prometheus.log", start)

        # 1. normal traffic is scraped and scored against the baseline
        wait("labelled predictions of loan 1, loan 2 and price",
             'count(modelmon_labels_total{model=~"loan|price"} > 0)',
             lambda r: bool(r) and _value(r) >= 3)
        wait("drift scores of loan against the baseline",
             'count(modelmon_drift_score{model="loan",method="psi",reference="baseline"})',
             lambda r: bool(r) and _value(r) >= 2)
        pause = start + DRIFT_AFTER - time.time()
        if pause > 0:
            time.sleep(pause)
        # 2. the drift
        drift_start = time.time()
        traffic.drifted = True
        wait("ModelMonFeatureDrift firing for credit_score of loan",
             'ALERTS{alertstate="firing",alertname="ModelMonFeatureDrift",model="loan",'
             'feature="credit_score"}', _present, timeout=90)
        wait("concept drift detections of loan by both detectors",
             'count(modelmon_concept_drift_detections_total{model="loan",model_version="1"} > 0)',
             lambda r: bool(r) and _value(r) >= 2)
        wait("PSI of credit_score against the baseline above 0.5",
             'max(modelmon_drift_score{model="loan",feature="credit_score",method="psi",'
             'reference="baseline"})', lambda r: bool(r) and _value(r) > 0.5)
        wait("drift scores against the previous window",
             'count(modelmon_drift_score{model="loan",reference="previous"})'
             ' and count(modelmon_prediction_drift_score{model="loan",reference="previous"})',
             _present, timeout=60)
        wait("a jump of the PSI of credit_score against the previous window",
             'max_over_time(modelmon_drift_score{model="loan",model_version="1",'
             'feature="credit_score",method="psi",reference="previous"}[10m])',
             lambda r: bool(r) and _value(r) > 0.25)
        wait("estimated performance of loan",
             'count(modelmon_estimated_performance{model="loan"})', _present)
        wait("predictions expired after the join TTL",
             'sum(modelmon_predictions_expired_total{reason="ttl"})')
        wait("predictions evicted from the small join store of loan 2",
             'sum(modelmon_predictions_expired_total{reason="cap"})')
        wait("unmatched labels", 'sum(modelmon_labels_unmatched_total)')
        wait("__other__ categories",
             'sum(modelmon_feature_category_total{model="loan",category="__other__"})')
        wait("garden_area of price: window samples, too few for a verdict",
             'modelmon_drift_window_samples{model="price",feature="garden_area",'
             'reference="baseline"} unless on (model, model_version, feature, reference) '
             "modelmon_drift_detected", _present)
        deadline = time.monotonic() + 60
        while (missing := _missing_families(prom)) and time.monotonic() < deadline:
            time.sleep(0.5)
        if missing:
            raise AssertionError(f"populated Prometheus: no series of {sorted(missing)}; "
                                 f"traffic errors: {traffic.errors[:5]}")
        wait.timeline.append(("every catalogue series", round(time.time() - start, 1)))
        # 3. a few scrapes of the drifted state, so short rate() windows have data
        time.sleep(3)
        yield Populated(prom=prom, start=start, drift_start=drift_start,
                        scenarios=[dict(s) for s in SCENARIOS], traffic=traffic,
                        sidecars={"loan1": loan1, "loan2": loan2, "price": price},
                        timeline=wait.timeline)
