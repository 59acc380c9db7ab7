"""The container image (Dockerfile, .dockerignore) and the Kubernetes example, checked statically.

Nothing here needs a Docker daemon or a cluster. The one test that builds the
image runs only when ``docker`` is on PATH, a daemon answers ``docker info``
and the run is not under CI; it is marked ``slow``.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmon.cli import build_parser
from modelmon.drift.cli import DEFAULTS as DRIFT_DEFAULTS
from modelmon.drift.config import parse_duration
from modelmon.sidecar.config import _SETTINGS, DEFAULT_PORT, default_join_store

from .support import IN_CI, require_module

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
POD = REPO / "docs" / "kubernetes" / "pod-with-sidecar.yaml"


# -- a small Dockerfile reader -----------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buf):
            continue  # comments (also inside a continuation) and blank lines
        if line.endswith("\\"):
            buf += line[:-1].strip() + " "
            continue
        buf += line
        keyword, _, rest = buf.strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buf = ""
    assert not buf, f"Dockerfile ends inside a continuation: {buf!r}"
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each stage, each starting with its FROM."""
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            result.append([])
        elif ins[0] != "ARG":
            assert result, f"{ins[0]} before the first FROM"
        if result:
            result[-1].append(ins)
    return result


def args_of(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [rest for kw, rest in stage if kw == keyword]


def copy_sources(rest: str) -> tuple[list[str], dict[str, str]]:
    """(sources, --options) of a COPY/ADD; the last word is the destination."""
    if rest.startswith("["):
        words = json.loads(rest)
    else:
        words = shlex.split(rest)
    opts = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        opts[key] = value
    return words[:-1], opts


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether ``path`` (relative, /-separated) is left out by .dockerignore ``patterns``."""
    out = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pat.startswith("**/"):
            sub = pat[3:]
            hit = any(fnmatch.fnmatchcase(p, sub) for p in parts) or any(
                fnmatch.fnmatchcase("/".join(parts[i:]), sub) for i in range(len(parts)))
        else:
            hit = any(fnmatch.fnmatchcase(p, pat) for p in prefixes)
        if hit:
            out = not negate
    return out


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def final(dockerfile: str) -> list[tuple[str, str]]:
    return stages(dockerfile)[-1]


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


# -- Dockerfile --------------------------------------------------------------------------------


def test_multi_stage_build_on_python_311_slim(dockerfile: str) -> None:
    all_stages = stages(dockerfile)
    assert len(all_stages) >= 2
    for stage in all_stages:
        image = stage[0][1].split()[0]
        assert image == "python:3.11-slim", image
    build = all_stages[0]
    assert stage_name(build) == "build"
    assert any("pip wheel --no-deps" in r for r in args_of(build, "RUN"))
    final = all_stages[-1]
    copies = [copy_sources(r) for r in args_of(final, "COPY")]
    assert any(opts.get("from") == "build" for _, opts in copies), "final stage takes the wheel"
    installs = [r for r in args_of(final, "RUN") if "pip install" in r]
    assert installs and any(".whl" in r for r in installs)
    assert not any("--no-deps" in r for r in installs), "dependencies come with the wheel"
    # the Redis join store of the sidecar needs the redis extra
    assert any(".whl)[redis]" in r for r in installs)
    assert "redis" in tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]


def stage_name(stage: list[tuple[str, str]]) -> str | None:
    words = stage[0][1].split()
    return words[2] if len(words) == 3 and words[1].upper() == "AS" else None


def test_final_stage_runs_as_non_root(final: list[tuple[str, str]]) -> None:
    users = args_of(final, "USER")
    assert users, "the final stage sets no USER (it would run as root)"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]
    # numeric, so Kubernetes runAsNonRoot can verify it without /etc/passwd
    assert user == "10001"
    runs = " ".join(args_of(final, "RUN"))
    assert "--uid 10001" in runs and "/usr/sbin/nologin" in runs
    # USER comes after the last RUN: nothing later runs as root
    last_user = max(i for i, (kw, _) in enumerate(final) if kw == "USER")
    assert all(kw != "RUN" for kw, _ in final[last_user:])


def test_healthcheck_uses_python_not_curl(final: list[tuple[str, str]]) -> None:
    checks = args_of(final, "HEALTHCHECK")
    assert len(checks) == 1 and "CMD" in checks[0]
    hc = checks[0]
    assert "urllib" in hc and "http://127.0.0.1:${MODELMON_HEALTH_PORT:-10380}/-/healthy" in hc
    assert "curl" not in hc and "wget" not in hc
    # shell form, so that ${MODELMON_HEALTH_PORT:-10380} is expanded when the check runs
    assert not hc.split("CMD", 1)[1].strip().startswith("[")


def test_exposed_ports_are_the_default_ports(final: list[tuple[str, str]]) -> None:
    ports = {p.split("/")[0] for r in args_of(final, "EXPOSE") for p in r.split()}
    assert {"10380", "10381"} <= ports
    assert str(DEFAULT_PORT) == "10380"
    assert _SETTINGS["listen"][3] == "0.0.0.0:10380"
    assert DRIFT_DEFAULTS["listen"].endswith(":10381")


def test_entrypoint_and_cmd(final: list[tuple[str, str]]) -> None:
    assert [json.loads(r) for r in args_of(final, "ENTRYPOINT")] == [["modelmon"]]
    cmd = json.loads(args_of(final, "CMD")[-1])
    assert cmd == ["sidecar", "--config", "/etc/modelmon/modelmon.yaml"]
    args = build_parser().parse_args(cmd)  # the CMD is a valid command line
    assert args.command == "sidecar" and args.config == "/etc/modelmon/modelmon.yaml"
    assert build_parser().parse_args(["drift", "--scrape", "http://x/metrics"]).command == "drift"
    # the sidecar's default join store is a file in $XDG_STATE_HOME/modelmon: in the image
    # /var/lib/modelmon (also the working directory), which must be writable
    env = _key_values(args_of(final, "ENV"))
    assert default_join_store(env) == "sqlite:/var/lib/modelmon/join.sqlite"
    assert args_of(final, "WORKDIR")[-1] == "/var/lib/modelmon"
    assert any("chown 10001:10001 /var/lib/modelmon" in r for r in args_of(final, "RUN"))


def _key_values(lines: list[str]) -> dict[str, str]:
    """``key=value`` pairs of ENV or LABEL instructions (quotes removed)."""
    out: dict[str, str] = {}
    for line in lines:
        for word in shlex.split(line):
            key, sep, value = word.partition("=")
            assert sep, f"expected key=value, got {word!r}"
            out[key] = value
    return out


def test_env_and_labels(final: list[tuple[str, str]]) -> None:
    env = _key_values(args_of(final, "ENV"))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    labels = _key_values(args_of(final, "LABEL"))
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert labels["org.opencontainers.image.licenses"] == project["license"] == "Apache-2.0"
    assert labels["org.opencontainers.image.title"] == "modelmon"
    assert labels["org.opencontainers.image.description"]
    assert labels["org.opencontainers.image.source"].startswith("https://")


def test_copied_files_exist_and_are_in_the_context(dockerfile: str,
                                                  ignore_patterns: list[str]) -> None:
    copied: list[str] = []
    for stage in stages(dockerfile):
        for kw, rest in stage:
            if kw not in ("COPY", "ADD"):
                continue
            sources, opts = copy_sources(rest)
            if "from" in opts:
                continue  # from another stage
            assert kw == "COPY", "ADD fetches URLs and unpacks archives: use COPY"
            for src in sources:
                assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repo"
                assert not ignored(src.rstrip("/"), ignore_patterns), \
                    f".dockerignore leaves out {src}, which the Dockerfile copies"
                copied.append(src.rstrip("/"))
    # the wheel is built from pyproject.toml, its readme and the package directory
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "pyproject.toml" in copied and project["project"]["readme"] in copied
    package_dir = project["tool"]["setuptools"]["package-dir"][""]
    assert package_dir in copied
    # and none of the package's files is left out of the context
    for f in (REPO / package_dir).rglob("*"):
        rel = f.relative_to(REPO).as_posix()
        if f.is_file() and "__pycache__" not in rel and (f.suffix == ".py" or f.name == "py.typed"):
            assert not ignored(rel, ignore_patterns), rel


def test_dockerignore_excludes_vcs_tests_and_caches(ignore_patterns: list[str]) -> None:
    for pattern in (".git", "tests", "**/__pycache__", ".pytest_cache", ".mypy_cache",
                    ".ruff_cache", ".hypothesis", "**/*.egg-info"):
        assert pattern in ignore_patterns, pattern
    for path in (".git/config", "tests/sidecar/test_config.py",
                 "exporter/modelmon/__pycache__/cli.cpython-311.pyc",
                 "exporter/modelmon.egg-info/PKG-INFO", ".pytest_cache/v/cache/nodeids",
                 ".hypothesis/examples/x"):
        assert ignored(path, ignore_patterns), path
    for path in ("pyproject.toml", "README.md", "exporter/modelmon/cli.py",
                 "exporter/modelmon/py.typed"):
        assert not ignored(path, ignore_patterns), path


def _docker_daemon() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        proc = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return docker if proc.returncode == 0 and proc.stdout.strip() else None


@pytest.mark.slow
def test_docker_build(tmp_path: Path) -> None:
    if IN_CI:
        pytest.skip("not built under CI")
    docker = _docker_daemon()
    if docker is None:
        pytest.skip("no docker CLI on PATH or no daemon answering `docker info`")
    tag = "modelmon-test:dockerfile"
    build = subprocess.run([docker, "build", "-t", tag, str(REPO)], capture_output=True,
                           text=True, timeout=1800, check=False)
    assert build.returncode == 0, build.stderr[-4000:]
    try:
        run = subprocess.run([docker, "run", "--rm", tag, "--version"], capture_output=True,
                             text=True, timeout=120, check=False)
        assert run.returncode == 0 and run.stdout.startswith("modelmon "), run.stderr
        inspect = subprocess.run([docker, "image", "inspect", tag], capture_output=True,
                                 text=True, timeout=60, check=True)
        conf = json.loads(inspect.stdout)[0]["Config"]
        assert conf["User"].split(":")[0] == "10001"
        assert conf["Entrypoint"] == ["modelmon"]
        assert {"10380/tcp", "10381/tcp"} <= set(conf["ExposedPorts"])
        assert conf["Healthcheck"]["Test"][0] == "CMD-SHELL"
    finally:
        subprocess.run([docker, "image", "rm", "-f", tag], capture_output=True, timeout=120,
                       check=False)


# -- Kubernetes example ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(POD.read_text(encoding="utf-8")) if d]
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    assert len(deployments) == 1
    return deployments[0]


def _containers(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["containers"]}


def test_pod_sidecar_container(deployment: dict[str, Any]) -> None:
    containers = _containers(deployment)
    sidecars = [c for c in containers.values()
                if c["image"].startswith("ghcr.io/modelmon/modelmon:")]
    assert len(sidecars) == 1
    sc = sidecars[0]
    assert sc["image"] == "ghcr.io/modelmon/modelmon:0.1.0"
    assert sc["args"] == ["sidecar", "--baseline", "/etc/modelmon/baseline.yaml"]
    args = build_parser().parse_args(sc["args"])
    assert args.command == "sidecar" and args.baseline == ["/etc/modelmon/baseline.yaml"]

    ports = {p["name"]: p for p in sc["ports"]}
    assert ports["metrics"]["containerPort"] == DEFAULT_PORT == 10380
    ready, live = sc["readinessProbe"]["httpGet"], sc["livenessProbe"]["httpGet"]
    assert ready["path"] == "/-/ready" and live["path"] == "/-/healthy"
    assert ready["port"] in ("metrics", 10380) and live["port"] in ("metrics", 10380)

    res = sc["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"]
    sec = sc["securityContext"]
    assert sec["runAsNonRoot"] is True and sec["readOnlyRootFilesystem"] is True
    assert sec["allowPrivilegeEscalation"] is False and sec["capabilities"]["drop"] == ["ALL"]
    assert sec.get("runAsUser", 10001) == 10001

    # the baseline comes from a ConfigMap mounted where --baseline points
    pod = deployment["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in sc["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (name, mount), = [(n, m) for n, m in mounts.items() if "configMap" in volumes[n]]
    assert mount["mountPath"] == "/etc/modelmon" and mount.get("readOnly") is True
    items = {i["path"] for i in volumes[name]["configMap"].get("items", [])}
    assert not items or "baseline.yaml" in items


def test_pod_model_container_and_shutdown(deployment: dict[str, Any]) -> None:
    containers = _containers(deployment)
    model = next(c for c in containers.values() if c["image"] == "example.com/loan-model:1.4")
    urls = [e.get("value", "") for e in model.get("env", [])]
    assert "http://127.0.0.1:10380/v1/models/loan/events" in urls

    meta = deployment["spec"]["template"]["metadata"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= meta["labels"].items()
    ann = meta["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "10380"
    assert ann.get("prometheus.io/path", "/metrics") == "/metrics"

    # the grace period covers the sidecar's shutdown delay plus time to drain
    sc = containers["modelmon"]
    env = {e["name"]: str(e.get("value", "")) for e in sc.get("env", [])}
    delay = parse_duration(env.get("MODELMON_SHUTDOWN_DELAY") or "5s")
    assert _SETTINGS["shutdown_delay"][3] == "5s"
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= delay + 10, (grace, delay)


def test_pod_passes_kubernetes_validate(deployment: dict[str, Any]) -> None:
    kv = require_module("kubernetes_validate", "kubernetes-validate")
    for doc in yaml.safe_load_all(POD.read_text(encoding="utf-8")):
        if doc:
            kv.validate(doc, kv.latest_version(), strict=True)
