"""POST /v1/models/{model}/labels: labels joined to the events posted with the same id."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from modelmon import Baseline

from modelmon.sidecar.config import Limits

from ..conftest import free_port
from .conftest import Live, start_sidecar


def events(ids: list[str], preds: list[str]) -> bytes:
    return json.dumps({"events": [
        {"id": i, "features": {"age": 30.0 + k % 20, "income": 20000.0, "purpose": "car"},
         "prediction": p, "probabilities": {"p_yes": 0.1 + (k % 9) / 10}}
        for k, (i, p) in enumerate(zip(ids, preds))]}).encode()


@pytest.fixture
def sidecar(baseline: Baseline) -> Live:
    lv = start_sidecar([baseline], Limits(max_body_bytes=256 * 1024, max_events_per_request=500))
    yield lv
    lv.http.close()
    lv.server.stop()


def confusion(lv: Live, actual: str, predicted: str, segment: str = "all") -> float:
    return lv.value("modelmon_confusion_total", model="loan", model_version="3",
                    segment=segment, actual=actual, predicted=predicted)


def test_labels_join_the_events_with_the_same_id(sidecar: Live) -> None:
    ids = [f"req-{i}" for i in range(60)]
    preds = ["yes" if i % 3 else "no" for i in range(60)]
    r = sidecar.post("loan", events(ids, preds))
    assert r.status_code == 200 and r.json()["accepted"] == 60
    # JSON labels for the first 40, NDJSON for the next 20, plus one unknown id
    actual = ["yes" if i % 2 else "no" for i in range(60)]
    body = json.dumps({"labels": [{"id": i, "label": a, "timestamp": 1.9e9}
                                  for i, a in zip(ids[:40], actual[:40])]}).encode()
    r = sidecar.post_labels("loan", body)
    assert r.status_code == 200
    assert r.json() == {"accepted": 40, "matched": 40, "unmatched": 0, "rejected": []}
    nd = "\n".join(json.dumps({"id": i, "label": a}) for i, a in zip(ids[40:], actual[40:]))
    nd += '\n{"id": "never-seen", "label": "yes"}\n'
    r = sidecar.post_labels("loan", gzip.compress(nd.encode()), "application/x-ndjson",
                            **{"Content-Encoding": "gzip"})
    assert r.json() == {"accepted": 21, "matched": 20, "unmatched": 1, "rejected": []}
    for a in ("yes", "no"):
        for p in ("yes", "no"):
            want = sum(1 for x, y in zip(actual, preds) if (x, y) == (a, p))
            assert confusion(sidecar, a, p) == want
    assert sidecar.value("modelmon_labels_total", model="loan", model_version="3") == 60
    assert sidecar.value("modelmon_labels_unmatched_total", model="loan", model_version="3") == 1
    assert sidecar.value("modelmon_sidecar_requests_total", endpoint="labels", code="200") == 2


def test_bad_labels_are_listed_and_the_good_ones_joined(sidecar: Live) -> None:
    sidecar.post("loan", events(["a", "b", "c"], ["yes", "no", "yes"]))
    body = (b'{"labels": [{"id": "a", "label": "yes"}, {"id": "b"},'
            b' {"id": "c", "label": "no", "extra": 1}, {"id": "", "label": "no"},'
            b' {"id": "b", "label": ["no"]}, {"id": "b", "label": "no", "timestamp": "soon"},'
            b' 17]}')
    r = sidecar.post_labels("loan", body)
    assert r.status_code == 200
    doc = r.json()
    assert (doc["accepted"], doc["matched"]) == (1, 1)
    fields = {e["index"]: e["field"] for e in doc["rejected"]}
    assert fields == {1: "labels[1].label", 2: "labels[2].extra", 3: "labels[3].id",
                      4: "labels[4].label", 5: "labels[5].timestamp", 6: "labels[6]"}
    messages = {e["index"]: e["error"] for e in doc["rejected"]}
    assert messages[1] == "required field is missing"
    assert "unknown field; expected id, label, timestamp" in messages[2]
    # b and c are still remembered: correct labels join them
    r = sidecar.post_labels("loan", b'{"labels": [{"id": "b", "label": "no"},'
                                    b' {"id": "c", "label": "no"}]}')
    assert r.json()["matched"] == 2


@pytest.mark.parametrize("body, ctype, status, code", [
    (b'{"labels": [', "application/json", 400, "malformed_json"),
    (b'{"events": []}', "application/json", 400, "invalid_body"),
    (b"[1, 2]", "application/json", 400, "invalid_body"),
    (b'{"labels": []}', "text/plain", 415, "unsupported_media_type"),
    (json.dumps({"labels": [{"id": str(i), "label": "no"} for i in range(501)]}).encode(),
     "application/json", 413, "too_many_labels"),
])
def test_whole_request_errors(sidecar: Live, body: bytes, ctype: str, status: int,
                              code: str) -> None:
    r = sidecar.post_labels("loan", body, ctype)
    assert r.status_code == status
    assert r.json()["error"] == code


def test_unknown_model_and_method(sidecar: Live) -> None:
    r = sidecar.post_labels("nope", b'{"labels": []}')
    assert r.status_code == 404 and r.json()["error"] == "unknown_model"
    r = sidecar.http.get(f"{sidecar.url}/v1/models/loan/labels", timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"


def test_a_label_posted_to_another_replica_joins_through_redis(baseline: Baseline,
                                                              redis_server) -> None:  # noqa: ANN001
    from modelmon.monitor.joinstore import RedisJoinStore

    a = start_sidecar([baseline], app_kwargs={"join_store": RedisJoinStore(redis_server.url)})
    b = start_sidecar([baseline], app_kwargs={"join_store": RedisJoinStore(redis_server.url)})
    try:
        ids = [f"x-{i}" for i in range(50)]
        assert a.post("loan", events(ids, ["yes"] * 50)).json()["accepted"] == 50
        a.http.get(f"{a.url}/metrics", timeout=10)  # a scrape: what was buffered is put
        body = json.dumps({"labels": [{"id": i, "label": "no"} for i in ids]}).encode()
        assert b.post_labels("loan", body).json()["matched"] == 50
        assert confusion(b, "no", "yes") == 50 and confusion(a, "no", "yes") == 0
        # the same labels again, at either replica: already joined
        assert a.post_labels("loan", body).json()["unmatched"] == 50
    finally:
        for lv in (a, b):
            lv.http.close()
            lv.server.stop()


def _spawn(baseline_file: Path, db: Path, port: int, commit: str) -> subprocess.Popen:
    env = {**os.environ, "MODELMON_JOIN_STORE": f"sqlite:{db}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelmon", "sidecar", "--baseline", str(baseline_file),
         "--listen", f"127.0.0.1:{port}", "--join-commit-interval", commit,
         "--shutdown-delay", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.stdout.read().decode() if proc.stdout else "no output")
        time.sleep(0.1)


@pytest.mark.slow
def test_sigkill_loses_at_most_the_commit_interval(baseline: Baseline, tmp_path: Path) -> None:
    """Events posted (and answered) before a SIGKILL are all joined after the restart except
    those of about the last commit interval. The bound is the interval plus the time the
    committer needs for the backlog (at full load on two shared cores, with this test's client,
    that is up to ~1.5 s more), plus the sidecar's small-batch buffer (2,048 events)."""
    bfile = baseline.save(tmp_path / "loan.yaml")
    db = tmp_path / "join.sqlite"
    port = free_port()
    commit = 0.5
    proc = _spawn(bfile, db, port, f"{commit}s")
    url = f"http://127.0.0.1:{port}/v1/models/loan/events"
    acked: list[tuple[float, list[str]]] = []
    http = requests.Session()
    try:
        t_end = time.monotonic() + 4.0
        k = 0
        while time.monotonic() < t_end:  # batches of 100 events with ids, as fast as it takes
            ids = [f"k{k}-{i}" for i in range(100)]
            r = http.post(url, data=events(ids, ["yes"] * 100),
                          headers={"Content-Type": "application/json"}, timeout=10)
            assert r.json()["accepted"] == 100
            acked.append((time.monotonic(), ids))
            k += 1
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    margin = 2.0
    safe = [i for t, ids in acked if t < killed_at - commit - margin for i in ids]
    recent = [i for t, ids in acked if t >= killed_at - commit - margin for i in ids]
    assert len(safe) >= 1000, "too few batches before the kill to test anything"
    # restarted on the same file, the sidecar joins the labels of every prediction
    # acknowledged before the last commit interval
    port = free_port()
    proc = _spawn(bfile, db, port, f"{commit}s")
    labels_url = f"http://127.0.0.1:{port}/v1/models/loan/labels"

    def join(ids: list[str]) -> int:
        matched = 0
        for k in range(0, len(ids), 5000):
            body = json.dumps({"labels": [{"id": i, "label": "no"}
                                          for i in ids[k:k + 5000]]}).encode()
            r = requests.post(labels_url, data=body, timeout=30,
                              headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.text
            matched += r.json()["matched"]
        return matched

    try:
        assert join(safe) == len(safe)
        kept_per_batch = [(t, join(ids)) for t, ids in acked if t >= killed_at - commit - margin]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    lost = [(t, len(ids) - k) for (t, k), (_, ids) in zip(
        kept_per_batch, [a for a in acked if a[0] >= killed_at - commit - margin]) if k < len(ids)]
    window = killed_at - min(t for t, _ in lost) if lost else 0.0
    print(f"SIGKILL after {len(safe) + len(recent)} acknowledged predictions: all {len(safe)} "
          f"older than {commit + margin:.1f} s kept; {sum(n for _, n in lost)} of the "
          f"{len(recent)} newer ones lost, acknowledged in the last {window:.2f} s")
