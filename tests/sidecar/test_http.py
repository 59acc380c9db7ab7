"""The sidecar's HTTP surface on a live uvicorn server on loopback."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess

import pytest
import requests

from .conftest import Live


def events(n: int, age: float = 30.0) -> bytes:
    return json.dumps({"events": [{"features": {"age": age}}] * n}).encode()


def test_post_json_and_ndjson(live: Live) -> None:
    r = live.post("loan", events(3))
    assert r.status_code == 200 and r.json() == {"accepted": 3, "rejected": []}
    nd = b'{"features": {"age": 1}}\n{"features": {"age": "x"}}\n'
    r = live.post("loan", nd, "application/x-ndjson")
    assert r.status_code == 200
    assert r.json()["accepted"] == 1 and r.json()["rejected"][0]["field"] == "events[1].features.age"
    assert live.value("modelmon_feature_value_count", model="loan", model_version="3",
                      feature="age") == 4
    assert live.value("modelmon_sidecar_events_rejected_total", model="loan", model_version="3",
                      reason="wrong_type") == 1
    assert live.value("modelmon_sidecar_requests_total", endpoint="events", code="200") == 2


def test_content_type_with_charset_and_gzip_body(live: Live) -> None:
    r = live.post("loan", gzip.compress(events(5)), "application/json; charset=utf-8",
                  **{"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["accepted"] == 5


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_415_names_the_accepted_types(live: Live, ctype: str) -> None:
    r = live.post("loan", events(1), ctype)
    assert r.status_code == 415
    doc = r.json()
    assert doc["error"] == "unsupported_media_type" and "application/x-ndjson" in doc["message"]


def test_unsupported_content_encoding(live: Live) -> None:
    r = live.post("loan", events(1), **{"Content-Encoding": "br"})
    assert r.status_code == 415 and r.json()["error"] == "unsupported_encoding"


def test_404_unknown_model_and_path(live: Live) -> None:
    r = live.post("nope", events(1))
    assert r.status_code == 404 and r.json()["error"] == "unknown_model"
    assert "loan" in r.json()["message"]
    r = live.http.get(f"{live.url}/v2/whatever")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_405_with_allow_header(live: Live) -> None:
    r = live.http.get(f"{live.url}/v1/models/loan/events")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert r.json()["error"] == "method_not_allowed"
    r = live.http.post(f"{live.url}/metrics")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"


def test_400_malformed_json_has_line_and_column(live: Live) -> None:
    r = live.post("loan", b'{"events": [\n  {"features": {"age": 1},\n]}')
    assert r.status_code == 400
    assert r.json() == {"error": "malformed_json",
                        "message": "malformed JSON at line 3, column 1: object keys must be strings"}


def test_413_by_content_length_reads_no_further(live: Live) -> None:
    # Announce a body over the limit and send none of it: the reply comes at once.
    host, port = live.server.address
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"POST /v1/models/loan/events HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        reply = data.decode()
    assert reply.startswith("HTTP/1.1 413")
    assert '"error":"body_too_large"' in reply and "max_body_bytes" in reply


def test_413_chunked_body_over_the_limit(live: Live) -> None:
    def gen():
        for _ in range(100):
            yield b" " * 1024
    r = live.http.post(f"{live.url}/v1/models/loan/events", data=gen(),
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"


def test_413_too_many_events(live: Live) -> None:
    r = live.post("loan", events(101))
    assert r.status_code == 413 and r.json()["error"] == "too_many_events"
    r = live.post("loan", b'{"features": {}}\n' * 101, "application/x-ndjson")
    assert r.status_code == 413
    assert live.value("modelmon_predictions_total", model="loan", model_version="3") == 0


def test_models_endpoint(live: Live, baseline) -> None:
    r = live.http.get(f"{live.url}/v1/models")
    assert r.status_code == 200
    m = r.json()["models"][0]
    assert (m["name"], m["version"], m["baseline_id"]) == ("loan", "3", baseline.id)
    assert m["features"] == ["age", "income", "purpose"]


def test_metrics_text_gzip_and_openmetrics(live: Live, promtool: str) -> None:
    live.post("loan", events(2))
    r = live.http.get(f"{live.url}/metrics", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.text  # requests decodes gzip
    assert 'modelmon_predictions_total{model="loan",model_version="3"} 2.0' in text
    check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    r = live.http.get(f"{live.url}/metrics",
                      headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["Content-Type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")
    assert 'modelmon_predictions_total{model="loan",model_version="3"} 2.0' in r.text


def test_health_and_readiness(live: Live) -> None:
    assert live.http.get(f"{live.url}/-/healthy").status_code == 200
    assert live.http.get(f"{live.url}/-/ready").status_code == 200
    live.app.ready = False
    r = live.http.get(f"{live.url}/-/ready")
    assert r.status_code == 503
    assert live.value("modelmon_sidecar_ready") == 0


def test_internal_error_is_a_json_500_and_the_server_lives_on(live: Live) -> None:
    class Boom(Exception):
        pass

    ing = live.app.ingestors["loan"]
    original = ing.ingest_json

    def broken(body: bytes):
        raise Boom("bug")
    ing.ingest_json = broken  # type: ignore[method-assign]
    try:
        r = live.post("loan", events(1))
    finally:
        ing.ingest_json = original  # type: ignore[method-assign]
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert live.post("loan", events(1)).status_code == 200


def test_keep_alive_connection_survives_errors(live: Live) -> None:
    s = requests.Session()
    for body, ctype, code in [(b"{", "application/json", 400), (events(1), "text/csv", 415),
                              (events(1), "application/json", 200)]:
        r = s.post(f"{live.url}/v1/models/loan/events", data=body,
                   headers={"Content-Type": ctype})
        assert r.status_code == code
    s.close()


def test_default_registry_has_process_metrics() -> None:
    from modelmon.sidecar.app import default_registry
    from prometheus_client import generate_latest

    text = generate_latest(default_registry()).decode()
    assert "process_cpu_seconds_total" in text and "python_info" in text


def test_cut_off_gzip_body_is_a_400(live: Live) -> None:
    whole = gzip.compress(events(50))
    r = live.post("loan", whole[: len(whole) // 2], **{"Content-Encoding": "gzip"})
    assert r.status_code == 400 and r.json()["error"] == "malformed_gzip"
    r = live.post("loan", b"not gzip at all", **{"Content-Encoding": "gzip"})
    assert r.status_code == 400 and r.json()["error"] == "malformed_gzip"
