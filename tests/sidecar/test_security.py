"""--web.config.file on the sidecar: TLS and basic auth on every endpoint but health checks."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests
import requests as _requests

from modelmon.webconfig import load_web_config

from ..conftest import free_port
from ..test_webconfig import PASSWORD, PKI, USER, USERS_BLOCK, tls_block, write
from .conftest import start_sidecar

class _Client:
    """requests' verbs, each on a fresh session that is closed after the call."""

    def __getattr__(self, verb: str):
        def call(*args, **kwargs):
            with _requests.Session() as s:
                return getattr(s, verb)(*args, **kwargs)
        return call


BODY = json.dumps({"events": [{"features": {"age": 30.0}}]}).encode()
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


def test_tls_and_basic_auth(baseline, tmp_path, pki) -> None:
    web = load_web_config(write(tmp_path, tls_block(pki) + USERS_BLOCK))
    lv = start_sidecar([baseline], web_config=web)
    requests = _Client()  # every call on its own connection, closed at once
    try:
        assert lv.url.startswith("https://")
        ca = str(pki.ca_file)
        events = f"{lv.url}/v1/models/loan/events"
        # wrong password and no credentials: 401 with a JSON body, nothing counted
        r = requests.post(events, data=BODY, headers=JSON, auth=(USER, "wrong"), verify=ca)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        assert r.headers["WWW-Authenticate"] == 'Basic realm="modelmon"'
        assert requests.get(f"{lv.url}/metrics", verify=ca).status_code == 401
        # plain HTTP to the TLS port is refused
        host, port = lv.server.address
        try:
            plain = requests.get(f"http://{host}:{port}/metrics", auth=(USER, PASSWORD),
                                 timeout=5)
        except _requests.ConnectionError:
            pass
        else:
            assert plain.status_code != 200
        # good credentials: 200
        r = requests.post(events, data=BODY, headers=JSON, auth=(USER, PASSWORD), verify=ca)
        assert r.status_code == 200 and r.json()["accepted"] == 1
        r = requests.get(f"{lv.url}/metrics", auth=(USER, PASSWORD), verify=ca)
        assert r.status_code == 200
        assert 'modelmon_predictions_total{model="loan",model_version="3"} 1.0' in r.text
        # health checks stay open for kubelet probes
        assert requests.get(f"{lv.url}/-/healthy", verify=ca).status_code == 200
        assert requests.get(f"{lv.url}/-/ready", verify=ca).status_code == 200
    finally:
        lv.server.stop()


def test_cli_takes_the_flag_and_reports_a_bad_file(baseline, tmp_path, pki) -> None:
    b = baseline.save(tmp_path / "loan.yaml")
    bad = write(tmp_path, "basic_auth_users:\n  alice: not-a-hash\n", "bad.yml")
    out = subprocess.run([sys.executable, "-m", "modelmon", "sidecar", "--baseline", str(b),
                          "--web.config.file", str(bad)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert "modelmon sidecar: error: --web.config.file" in out.stderr
    assert "basic_auth_users.alice" in out.stderr and "Traceback" not in out.stderr

    web = write(tmp_path, USERS_BLOCK, "web.yml")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "modelmon", "sidecar", "--baseline", str(b),
                             "--listen", f"127.0.0.1:{port}", "--shutdown-delay", "0"],
                            env={**__import__("os").environ, "MODELMON_WEB_CONFIG_FILE": str(web)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/-/healthy", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        assert requests.get(f"{url}/v1/models", timeout=5).status_code == 401
        assert requests.get(f"{url}/v1/models", auth=(USER, PASSWORD),
                            timeout=5).status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
