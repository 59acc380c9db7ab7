"""Settings of ``modelmon sidecar``: config file, ``MODELMON_*`` variables, flags, errors.

``resolve(args, environ)`` is always given an explicit ``environ`` so the
tests never depend on (or change) the process environment. Every error must
name where the bad value came from (file and key, flag or variable) and what
was expected, and the command must exit 2 with one line, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from modelmon import Baseline
from modelmon.sidecar.config import (
    _SETTINGS,
    DEFAULT_PORT,
    ConfigError,
    Limits,
    SidecarConfig,
    add_arguments,
    describe,
    resolve,
)

from .conftest import make_baseline

MiB = 1 << 20
REPO = Path(__file__).resolve().parents[2]


# -- helpers ---------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="modelmon sidecar")
    add_arguments(parser)
    return parser.parse_args(list(argv))


def config(*argv: str, env: Mapping[str, str] | None = None) -> SidecarConfig:
    return resolve(parse(*argv), dict(env or {}))


def error(*argv: str, env: Mapping[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        resolve(parse(*argv), dict(env or {}))
    return str(info.value)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def assert_names(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} not in the error message {message!r}"


@pytest.fixture(scope="module")
def baselines() -> dict[str, Baseline]:
    return {"loan": make_baseline("loan"), "fraud": make_baseline("fraud", seed=8)}


@pytest.fixture
def tmp(tmp_path: Path, baselines: dict[str, Baseline], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with ``loan.yaml`` and ``fraud.yaml`` (both model_version 3)."""
    for name, b in baselines.items():
        b.save(tmp_path / f"{name}.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- a full file -----------------------------------------------------------------------


def test_full_file(tmp: Path, monkeypatch: pytest.MonkeyPatch,
                   baselines: dict[str, Baseline]) -> None:
    conf = tmp / "etc" / "modelmon"
    write(tmp / "etc" / "baselines" / "loan.yaml", (tmp / "loan.yaml").read_text())
    write(conf / "fraud.yaml", (tmp / "fraud.yaml").read_text())
    write(conf / "web.yml", "")  # empty web config: no TLS, no auth
    path = write(conf / "modelmon.yaml", """
        listen: 127.0.0.1:9100
        models:
          - name: loan
            version: "3"
            baseline: ../baselines/loan.yaml   # relative to this file
          - baseline: fraud.yaml
        limits:
          max_body_bytes: 2MiB
          max_events_per_request: 500
        shutdown_delay: 1m30s
        web_config_file: web.yml
        """)
    # relative paths are resolved against the file's directory, not the working directory
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = config("--config", path)
    assert [m.name for m in cfg.models] == ["loan", "fraud"]
    assert Path(cfg.models[0].path).resolve() == (tmp / "etc" / "baselines" / "loan.yaml").resolve()
    assert Path(cfg.models[1].path).resolve() == (conf / "fraud.yaml").resolve()
    assert all(os.path.isabs(m.path) for m in cfg.models)
    assert cfg.models[0].baseline.id == baselines["loan"].id
    assert cfg.models[1].baseline.model_version == "3"
    assert (cfg.host, cfg.port) == ("127.0.0.1", 9100)
    assert cfg.limits == Limits(max_body_bytes=2 * MiB, max_events_per_request=500)
    assert cfg.shutdown_delay == 90.0
    assert cfg.web_config_file is not None and os.path.isabs(cfg.web_config_file)
    assert Path(cfg.web_config_file).resolve() == (conf / "web.yml").resolve()
    line = describe(cfg)
    assert_names(line, "listen=127.0.0.1:9100", "models=loan@3,fraud@3",
                 f"max_body_bytes={2 * MiB}", "max_events_per_request=500",
                 "shutdown_delay=90s", "tls_or_auth=yes")


def test_model_entries_may_be_bare_paths(tmp: Path) -> None:
    path = write(tmp / "c.yaml", "models: [loan.yaml, fraud.yaml]\n")
    assert [m.name for m in config("--config", path).models] == ["loan", "fraud"]


def test_model_version_may_be_a_yaml_number(tmp: Path) -> None:
    path = write(tmp / "c.yaml", "models:\n  - {name: loan, version: 3, baseline: loan.yaml}\n")
    assert config("--config", path).models[0].baseline.model_version == "3"


@pytest.mark.parametrize(("text", "expected"), [
    ("8MiB", 8 * MiB), ("512KiB", 512 * 1024), ("1MB", 1_000_000), ("1GiB", 1 << 30),
    ("100b", 100), ("8 mib", 8 * MiB), ("0.5KiB", 512), ("1048576", 1 << 20),
])
def test_sizes(tmp: Path, text: str, expected: int) -> None:
    path = write(tmp / "c.yaml", f"models: [loan.yaml]\nlimits:\n  max_body_bytes: {text}\n")
    assert config("--config", path).limits.max_body_bytes == expected
    assert config("--baseline", "loan.yaml", "--max-body-bytes", text).limits.max_body_bytes \
        == expected


def test_config_file_from_the_environment(tmp: Path) -> None:
    path = write(tmp / "c.yaml", "models: [loan.yaml]\nlisten: :9200\n")
    other = write(tmp / "other.yaml", "models: [fraud.yaml]\nlisten: :9300\n")
    assert config(env={"MODELMON_CONFIG": path}).port == 9200
    # the flag wins over the variable
    cfg = config("--config", other, env={"MODELMON_CONFIG": path})
    assert cfg.port == 9300 and [m.name for m in cfg.models] == ["fraud"]


def test_empty_file_uses_defaults(tmp: Path) -> None:
    path = write(tmp / "c.yaml", "# nothing but a comment\n")
    cfg = config("--config", path, "--baseline", "loan.yaml")
    assert cfg.port == DEFAULT_PORT and cfg.limits == Limits()


# -- defaults --------------------------------------------------------------------------


def test_defaults(tmp: Path) -> None:
    cfg = config("--baseline", "loan.yaml")
    assert (cfg.host, cfg.port) == ("0.0.0.0", 10380) and DEFAULT_PORT == 10380
    assert cfg.limits.max_body_bytes == 8 * MiB
    assert cfg.limits.max_events_per_request == 10_000
    assert cfg.limits == Limits()
    assert cfg.shutdown_delay == 5.0
    assert cfg.web_config_file is None
    assert [(m.name, m.path) for m in cfg.models] == [("loan", "loan.yaml")]
    assert "tls_or_auth=no" in describe(cfg)


@pytest.mark.parametrize("zero", ["0", "0s"])
def test_shutdown_delay_zero_means_stop_at_once(tmp: Path, zero: str) -> None:
    cfg = config("--baseline", "loan.yaml", "--shutdown-delay", zero)
    assert cfg.shutdown_delay == 0.0 and "shutdown_delay=0s" in describe(cfg)
    path = write(tmp / "c.yaml", f"models: [loan.yaml]\nshutdown_delay: {zero}\n")
    assert config("--config", path).shutdown_delay == 0.0


# -- precedence: flag > MODELMON_* > file > default ---------------------------------------

# setting -> (flag, variable, file snippet, file value, env value, flag value, getter, default)
PRECEDENCE = {
    "listen": ("--listen", "MODELMON_LISTEN", "listen: 127.0.0.1:9001",
               ("127.0.0.1", 9001), ":9002", "[::1]:9003",
               ("0.0.0.0", 9002), ("::1", 9003), ("0.0.0.0", 10380)),
    "max_body_bytes": ("--max-body-bytes", "MODELMON_MAX_BODY_BYTES",
                       "limits:\n  max_body_bytes: 1MiB",
                       MiB, "2MiB", "3MiB", 2 * MiB, 3 * MiB, 8 * MiB),
    "max_events_per_request": ("--max-events-per-request", "MODELMON_MAX_EVENTS_PER_REQUEST",
                               "limits:\n  max_events_per_request: 100",
                               100, "200", "300", 200, 300, 10_000),
    "shutdown_delay": ("--shutdown-delay", "MODELMON_SHUTDOWN_DELAY", "shutdown_delay: 1s",
                       1.0, "2s", "3s", 2.0, 3.0, 5.0),
    "web_config_file": ("--web.config.file", "MODELMON_WEB_CONFIG_FILE",
                        "web_config_file: web-file.yml",
                        "FILE", "ENV", "FLAG", "ENV", "FLAG", None),
    "join_store": ("--join-store", "MODELMON_JOIN_STORE", "labels:\n  join_store: memory",
                   "memory", "redis://e:6379/0", "sqlite:/tmp/flag.sqlite", "redis", "sqlite",
                   "sqlite"),
    "join_ttl": ("--join-ttl", "MODELMON_JOIN_TTL", "labels:\n  ttl: 1h",
                 3600.0, "2h", "3h", 7200.0, 10800.0, 7 * 86400.0),
    "join_max_rows": ("--join-max-rows", "MODELMON_JOIN_MAX_ROWS", "labels:\n  max_rows: 100",
                      100, "200", "300", 200, 300, 10_000_000),
    "join_commit_interval": ("--join-commit-interval", "MODELMON_JOIN_COMMIT_INTERVAL",
                             "labels:\n  commit_interval: 2s", 2.0, "3s", "4s", 3.0, 4.0, 1.0),
}


def _value(cfg: SidecarConfig, name: str) -> object:
    if name == "listen":
        return (cfg.host, cfg.port)
    if name in ("max_body_bytes", "max_events_per_request"):
        return getattr(cfg.limits, name)
    if name.startswith("join_"):
        key = {"join_store": "type", "join_ttl": "ttl_seconds", "join_max_rows": "max_rows",
               "join_commit_interval": "commit_interval"}[name]
        return cfg.join_store.get(key)
    return getattr(cfg, name)


def test_precedence_table_covers_every_setting() -> None:
    assert set(PRECEDENCE) == set(_SETTINGS)
    for name, (flag, var, *_rest) in PRECEDENCE.items():
        assert _SETTINGS[name][:2] == (flag, var)


@pytest.mark.parametrize("name", sorted(PRECEDENCE))
def test_precedence(tmp: Path, name: str) -> None:
    flag, var, snippet, in_file, env_text, flag_text, from_env, from_flag, default = \
        PRECEDENCE[name]
    if name == "web_config_file":
        # a relative path in the file is relative to the file; flags and variables are
        # taken as given
        for f in ("conf/web-file.yml", "web-env.yml", "web-flag.yml"):
            write(tmp / f, "")
        in_file = str((tmp / "conf" / "web-file.yml").resolve())
        env_text, flag_text = str(tmp / "web-env.yml"), "web-flag.yml"
        from_env, from_flag = env_text, flag_text
    path = write(tmp / "conf" / "c.yaml", f"models: [../loan.yaml]\n{snippet}\n")

    assert _value(config("--baseline", "loan.yaml"), name) == default
    got = _value(config("--config", path), name)
    assert (str(Path(str(got)).resolve()) if name == "web_config_file" else got) == in_file
    assert _value(config("--config", path, env={var: env_text}), name) == from_env
    # a variable set to blanks counts as unset
    got = _value(config("--config", path, env={var: "   "}), name)
    assert (str(Path(str(got)).resolve()) if name == "web_config_file" else got) == in_file
    assert _value(config("--config", path, flag, flag_text, env={var: env_text}), name) \
        == from_flag
    assert _value(config("--baseline", "loan.yaml", flag, flag_text), name) == from_flag
    assert _value(config("--baseline", "loan.yaml", env={var: env_text}), name) == from_env


def test_settings_errors_name_their_source(tmp: Path) -> None:
    """The same bad value is reported against the flag, the variable or the file key."""
    path = write(tmp / "c.yaml", "models: [loan.yaml]\nlimits:\n  max_events_per_request: -1\n")
    # the file's errors name the flag (or variable) that named it, the file and the key
    assert error("--config", path).startswith(
        f"--config: {path}: key 'limits.max_events_per_request': ")
    assert error(env={"MODELMON_CONFIG_FILE": path}).startswith(
        f"MODELMON_CONFIG_FILE: {path}: key 'limits.max_events_per_request': ")
    msg = error("--config", path, env={"MODELMON_MAX_EVENTS_PER_REQUEST": "0"})
    assert msg.startswith("MODELMON_MAX_EVENTS_PER_REQUEST: ")
    msg = error("--config", path, "--max-events-per-request", "many",
                env={"MODELMON_MAX_EVENTS_PER_REQUEST": "5"})
    assert msg.startswith("--max-events-per-request: ") and "'many'" in msg
    # a good flag hides a bad variable and a bad file value
    assert config("--config", path, "--max-events-per-request", "7",
                  env={"MODELMON_MAX_EVENTS_PER_REQUEST": "zero"}
                  ).limits.max_events_per_request == 7


# -- models from flags and variables ---------------------------------------------------------


def test_baseline_flag_repeated(tmp: Path) -> None:
    cfg = config("--baseline", "loan.yaml", "--baseline", str(tmp / "fraud.yaml"))
    assert [(m.name, m.path) for m in cfg.models] == [("loan", "loan.yaml"),
                                                      ("fraud", str(tmp / "fraud.yaml"))]
    assert "models=loan@3,fraud@3" in describe(cfg)


def test_modelmon_baseline_comma_separated(tmp: Path) -> None:
    cfg = config(env={"MODELMON_BASELINE": " loan.yaml , fraud.yaml,, "})
    assert [(m.name, m.path) for m in cfg.models] == [("loan", "loan.yaml"),
                                                      ("fraud", "fraud.yaml")]


def test_model_sources_precedence(tmp: Path) -> None:
    path = write(tmp / "c.yaml", "models: [loan.yaml]\n")
    env = {"MODELMON_BASELINE": "fraud.yaml"}
    assert [m.name for m in config("--config", path).models] == ["loan"]
    assert [m.name for m in config("--config", path, env=env).models] == ["fraud"]
    both = config("--config", path, "--baseline", "loan.yaml", "--baseline", "fraud.yaml",
                  env=env)
    assert [m.name for m in both.models] == ["loan", "fraud"]


def test_baseline_flag_overrides_a_bad_models_list(tmp: Path) -> None:
    path = write(tmp / "c.yaml", "models: [missing.yaml]\nlisten: :9400\n")
    cfg = config("--config", path, "--baseline", "fraud.yaml")
    assert [m.name for m in cfg.models] == ["fraud"] and cfg.port == 9400


# -- errors of the file: file, key, expectation ---------------------------------------------

FILE_ERRORS = {
    "unknown top-level key": (
        "models: [loan.yaml]\nlisen: :9000\n",
        ["key 'lisen': unknown key", "expected one of", "listen"]),
    "not a mapping": (
        "- loan.yaml\n",
        ["expected a mapping with keys", "models", "got list"]),
    "unknown limits key": (
        "models: [loan.yaml]\nlimits:\n  max_body: 1MiB\n",
        ["key 'limits.max_body': unknown key", "max_body_bytes",
         "max_events_per_request"]),
    "limits not a mapping": (
        "models: [loan.yaml]\nlimits: 5\n",
        ["key 'limits'", "expected a mapping", "got int"]),
    "models not a list": (
        "models: loan.yaml\n",
        ["key 'models'", "expected a non-empty list", "'loan.yaml'"]),
    "models an empty list": (
        "models: []\n",
        ["key 'models'", "expected a non-empty list", "got []"]),
    "models a mapping": (
        "models: {loan: loan.yaml}\n",
        ["key 'models'", "expected a non-empty list"]),
    "model entry not a mapping": (
        "models: [5]\n",
        ["key 'models[0]'", "expected a mapping with keys", "got int"]),
    "model entry with an unknown key": (
        "models:\n  - {baseline: loan.yaml, weight: 2}\n",
        ["key 'models[0].weight': unknown key", "baseline"]),
    "model entry missing baseline": (
        "models:\n  - baseline: loan.yaml\n  - name: fraud\n",
        ["key 'models[1].baseline'", "expected the path of a baseline YAML file", "None"]),
    "model entry with an empty baseline": (
        "models:\n  - baseline: ''\n",
        ["key 'models[0].baseline'", "expected the path of a baseline YAML file"]),
    "name mismatch": (
        "models:\n  - {name: credit, baseline: loan.yaml}\n",
        ["key 'models[0].name'", "'credit'", "does not match the model 'loan'", "loan.yaml"]),
    "version mismatch": (
        "models:\n  - {name: loan, version: 4, baseline: loan.yaml}\n",
        ["key 'models[0].version'", "'4'", "does not match the model_version '3'",
         "loan.yaml"]),
    "unreadable baseline": (
        "models:\n  - baseline: missing.yaml\n",
        ["key 'models[0].baseline'", "missing.yaml", "cannot read"]),
    "baseline that is a directory": (
        "models:\n  - baseline: .\n",
        ["key 'models[0].baseline'", "cannot read"]),
    "invalid baseline": (
        "models:\n  - baseline: junk.yaml\n",
        ["key 'models[0].baseline'", "junk.yaml", "key 'schema_version'", "missing"]),
    "bad YAML": (
        "listen: 0.0.0.0:10380\nlimits:\n  max_body_bytes: 8MiB\n   max_events_per_request: 10\n",
        ["not valid YAML at line 4, column 26", "mapping values are not allowed here"]),
    "bad YAML (tab)": (
        "models:\n\t- loan.yaml\n",
        ["not valid YAML at line 2, column 1", "'\\t'"]),
    "bad YAML (unclosed list)": (
        "models: [loan.yaml\n",
        ["not valid YAML at line 2, column 1", "expected ',' or ']'"]),
    "bad size": (
        "models: [loan.yaml]\nlimits:\n  max_body_bytes: 8 megabytes\n",
        ["key 'limits.max_body_bytes'", "expected a size in bytes such as 8MiB",
         "'8 megabytes'"]),
    "zero size": (
        "models: [loan.yaml]\nlimits:\n  max_body_bytes: 0\n",
        ["key 'limits.max_body_bytes'", "expected a size greater than zero"]),
    "negative size": (
        "models: [loan.yaml]\nlimits:\n  max_body_bytes: -1KiB\n",
        ["key 'limits.max_body_bytes'", "expected a size in bytes"]),
    "bool size": (
        "models: [loan.yaml]\nlimits:\n  max_body_bytes: true\n",
        ["key 'limits.max_body_bytes'", "expected a size in bytes"]),
    "zero max_events": (
        "models: [loan.yaml]\nlimits:\n  max_events_per_request: 0\n",
        ["key 'limits.max_events_per_request'", "expected a whole number >= 1", "got 0"]),
    "negative max_events": (
        "models: [loan.yaml]\nlimits:\n  max_events_per_request: -5\n",
        ["key 'limits.max_events_per_request'", "expected a whole number >= 1", "got -5"]),
    "fractional max_events": (
        "models: [loan.yaml]\nlimits:\n  max_events_per_request: 2.5\n",
        ["key 'limits.max_events_per_request'", "expected a whole number >= 1", "got 2.5"]),
    "bool max_events": (
        "models: [loan.yaml]\nlimits:\n  max_events_per_request: yes\n",
        ["key 'limits.max_events_per_request'", "expected a whole number >= 1", "got True"]),
    "bad listen": (
        "models: [loan.yaml]\nlisten: 10.0.0.1:99999\n",
        ["key 'listen'", "invalid listen address '10.0.0.1:99999'", "expected host:port"]),
    "bad listen (bare IPv6)": (
        "models: [loan.yaml]\nlisten: '::1:10380'\n",
        ["key 'listen'", "invalid listen address", "expected host:port"]),
    "bad duration": (
        "models: [loan.yaml]\nshutdown_delay: 5 seconds\n",
        ["key 'shutdown_delay'", "invalid duration '5 seconds'", "expected seconds (90)"]),
    "negative duration": (
        "models: [loan.yaml]\nshutdown_delay: -1s\n",
        ["key 'shutdown_delay'", "invalid duration '-1s'"]),
    "missing web config file": (
        "models: [loan.yaml]\nweb_config_file: web.yml\n",
        ["key 'web_config_file'", "expected the path of a web config file", "web.yml",
         "(not found)"]),
}


@pytest.mark.parametrize("case", sorted(FILE_ERRORS))
def test_file_errors_name_file_key_and_expectation(tmp: Path, case: str) -> None:
    text, parts = FILE_ERRORS[case]
    write(tmp / "junk.yaml", "model: x\n")
    path = write(tmp / "conf.yaml", text)
    msg = error("--config", path)
    assert msg.startswith(f"--config: {path}: "), msg
    assert_names(msg, *parts)
    assert "\n" not in msg.strip()


def test_unreadable_config_file(tmp: Path) -> None:
    assert_names(error("--config", "missing.yaml"), "missing.yaml:",
                 "cannot read the config file", "No such file")
    assert_names(error("--config", str(tmp)), f"{tmp}:", "cannot read the config file")
    assert_names(error(env={"MODELMON_CONFIG": "gone.yaml"}), "gone.yaml:",
                 "cannot read the config file")


def test_relative_baseline_is_not_resolved_against_the_working_directory(tmp: Path) -> None:
    # loan.yaml exists in the working directory but not next to the config file
    path = write(tmp / "conf" / "c.yaml", "models: [loan.yaml]\n")
    msg = error("--config", path)
    assert_names(msg, f"{path}: key 'models[0].baseline'",
                 str(Path(path).resolve().parent / "loan.yaml"), "cannot read")


# -- errors of flags and variables -----------------------------------------------------------


@pytest.mark.parametrize(("argv", "env", "parts"), [
    (["--baseline", "missing.yaml"], {}, ["--baseline missing.yaml: ", "cannot read"]),
    (["--baseline", "loan.yaml", "--baseline", "junk.yaml"], {},
     ["--baseline junk.yaml: ", "key 'schema_version'"]),
    ([], {"MODELMON_BASELINE": "loan.yaml,missing.yaml"},
     ["MODELMON_BASELINE missing.yaml: ", "cannot read"]),
    (["--listen", "x:y"], {}, ["--listen: ", "invalid listen address 'x:y'", "host:port"]),
    ([], {"MODELMON_LISTEN": "1.2.3.4:-1"}, ["MODELMON_LISTEN: ", "invalid listen address"]),
    (["--max-body-bytes", "lots"], {}, ["--max-body-bytes: ", "expected a size in bytes"]),
    ([], {"MODELMON_MAX_BODY_BYTES": "0KiB"},
     ["MODELMON_MAX_BODY_BYTES: ", "expected a size greater than zero"]),
    (["--max-events-per-request", "-3"], {},
     ["--max-events-per-request: ", "expected a whole number >= 1", "'-3'"]),
    ([], {"MODELMON_MAX_EVENTS_PER_REQUEST": "1e4"},
     ["MODELMON_MAX_EVENTS_PER_REQUEST: ", "expected a whole number >= 1", "'1e4'"]),
    (["--shutdown-delay", "forever"], {}, ["--shutdown-delay: ", "invalid duration 'forever'"]),
    ([], {"MODELMON_SHUTDOWN_DELAY": "5x"}, ["MODELMON_SHUTDOWN_DELAY: ", "invalid duration"]),
    (["--web.config.file", "nope.yml"], {},
     ["--web.config.file: ", "expected the path of a web config file", "'nope.yml'",
      "(not found)"]),
    ([], {"MODELMON_WEB_CONFIG_FILE": "nope.yml"},
     ["MODELMON_WEB_CONFIG_FILE: ", "(not found)"]),
])
def test_flag_and_variable_errors(tmp: Path, argv: list[str], env: dict[str, str],
                                  parts: list[str]) -> None:
    write(tmp / "junk.yaml", "model: x\n")
    if not argv and "MODELMON_BASELINE" not in env:
        argv = ["--baseline", "loan.yaml"]
    elif argv and argv[0] != "--baseline":
        argv = ["--baseline", "loan.yaml", *argv]
    msg = error(*argv, env=env)
    assert msg.startswith(parts[0]), msg
    assert_names(msg, *parts)


def test_same_model_twice(tmp: Path) -> None:
    write(tmp / "copy" / "loan.yaml", (tmp / "loan.yaml").read_text())
    msg = error("--baseline", "loan.yaml", "--baseline", "copy/loan.yaml")
    assert_names(msg, "model 'loan' is given twice", "loan.yaml", "copy/loan.yaml",
                 "one version per model")
    msg = error(env={"MODELMON_BASELINE": "loan.yaml,copy/loan.yaml"})
    assert_names(msg, "model 'loan' is given twice", "copy/loan.yaml")
    path = write(tmp / "c.yaml", "models: [loan.yaml, copy/loan.yaml]\n")
    assert_names(error("--config", path), "key 'models[1].baseline'",
                 "model 'loan' is already given by models[0]", "one version per model")


def test_no_models_at_all(tmp: Path) -> None:
    msg = error()
    assert_names(msg, "no model to monitor", "--baseline", "MODELMON_BASELINE", "--config",
                 "MODELMON_CONFIG", "'models:'")
    # blanks and empty items are not models
    assert "no model to monitor" in error(env={"MODELMON_BASELINE": " , "})
    path = write(tmp / "c.yaml", "listen: :9000\n")
    assert_names(error("--config", path), path, "key 'models': missing")


# -- once known bugs, now fixed ------------------------------------------------------


def test_config_file_not_utf8(tmp: Path) -> None:
    path = tmp / "c.yaml"
    path.write_bytes(b"models: [loan.yaml]\nlisten: '\xff\xfe'\n")
    assert_names(error("--config", str(path)), f"{path}: ", "UTF-8")


def test_baseline_not_utf8(tmp: Path) -> None:
    (tmp / "latin1.yaml").write_bytes(b"model: caf\xe9\n")
    path = write(tmp / "c.yaml", "models: [latin1.yaml]\n")
    assert_names(error("--config", path), f"{path}: key 'models[0].baseline'", "latin1.yaml")


def test_same_model_twice_in_the_file_names_file_and_key(tmp: Path) -> None:
    write(tmp / "copy" / "loan.yaml", (tmp / "loan.yaml").read_text())
    path = write(tmp / "c.yaml", "models: [loan.yaml, copy/loan.yaml]\n")
    assert_names(error("--config", path), f"{path}: ", "models[1]")


def test_file_without_models_names_the_file(tmp: Path) -> None:
    path = write(tmp / "c.yaml", "listen: :9000\n")
    assert_names(error("--config", path), path)


@pytest.mark.parametrize("zero", ["0ms", "0.0", "0m"])
def test_shutdown_delay_other_zeros(tmp: Path, zero: str) -> None:
    assert config("--baseline", "loan.yaml", "--shutdown-delay", zero).shutdown_delay == 0.0


def test_listen_yaml_bool_is_an_error(tmp: Path) -> None:
    path = write(tmp / "c.yaml", "models: [loan.yaml]\nlisten: yes\n")
    assert_names(error("--config", path), f"{path}: key 'listen'")


# -- the command line, end to end ----------------------------------------------------------------


def _run_cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELMON_")}
    return subprocess.run([sys.executable, "-m", "modelmon", "sidecar", *argv], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("text", "parts"), [
    ("models: [loan.yaml]\nlimits:\n  max_body: 1\n", ["key 'limits.max_body'"]),
    ("models:\n  - {name: credit, baseline: loan.yaml}\n",
     ["key 'models[0].name'", "does not match"]),
    ("models: [loan.yaml\n", ["not valid YAML at line 2, column 1"]),
])
def test_cli_bad_config_exits_2(tmp: Path, text: str, parts: list[str]) -> None:
    bad_file = write(tmp / "bad.yaml", text)
    proc = _run_cli("--config", bad_file, cwd=tmp)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("modelmon sidecar: error: "), proc.stderr
    assert_names(proc.stderr, bad_file, *parts)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_cli_config_not_utf8_exits_2(tmp: Path) -> None:
    bad_file = tmp / "bad.yaml"
    bad_file.write_bytes(b"models: [loan.yaml]\nlisten: '\xff'\n")
    proc = _run_cli("--config", str(bad_file), cwd=tmp)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


# -- the documentation lists every setting ----------------------------------------------------


def test_docs_list_every_setting() -> None:
    doc = (REPO / "docs" / "sidecar.md").read_text(encoding="utf-8")
    for flag, var, keys, default in _SETTINGS.values():
        row = next((ln for ln in doc.splitlines()
                    if ln.startswith("|") and f"`{'.'.join(keys)}`" in ln), None)
        assert row is not None, f"docs/sidecar.md: no table row for {'.'.join(keys)}"
        assert f"`{flag}" in row and f"`{var}`" in row, row
        if default is not None:
            assert re.search(rf"`{re.escape(default)}`", row), (default, row)
    for extra in ("`--config", "`MODELMON_CONFIG`", "`--baseline", "`MODELMON_BASELINE`"):
        assert extra in doc


def test_the_default_join_store_is_in_the_state_directory_never_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = tmp_path / "b.yaml"
    make_baseline().save(b)
    monkeypatch.chdir(tmp_path)
    cfg = config("--baseline", str(b), env={"XDG_STATE_HOME": str(tmp_path / "state")})
    assert cfg.join_store["type"] == "sqlite"
    assert cfg.join_store["path"] == str(tmp_path / "state" / "modelmon" / "join.sqlite")
    home = config("--baseline", str(b), env={}).join_store["path"]
    assert home == str(Path.home() / ".local" / "state" / "modelmon" / "join.sqlite")
    # ~ is expanded in a path given by the user, and a relative XDG_STATE_HOME is ignored
    got = config("--baseline", str(b), "--join-store", "sqlite:~/j.sqlite", env={})
    assert got.join_store["path"] == str(Path.home() / "j.sqlite")
    rel = config("--baseline", str(b), env={"XDG_STATE_HOME": "relative"}).join_store["path"]
    assert rel == home


def test_the_sqlite_join_store_creates_its_directory(tmp_path: Path) -> None:
    from modelmon.monitor.joinstore import SQLiteJoinStore

    path = tmp_path / "a" / "b" / "join.sqlite"
    store = SQLiteJoinStore(path)
    try:
        assert path.exists()
    finally:
        store.close()
