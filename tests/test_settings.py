"""``modelmon.settings``: the one resolver of every command's settings.

Precedence (flag > ``MODELMON_*`` > file > default) in every order of the
sources, errors naming where a bad value came from (the flag as typed, the
variable, the file and the key), unknown file keys named with their path,
the duration rule (zero only where a setting allows it) and the aliases, on a
small table of its own and on the two commands' real tables.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest

from modelmon.drift.cli import DRIFT_SETTINGS
from modelmon.drift.cli import ConfigError as DriftConfigError
from modelmon.drift.cli import add_arguments as drift_arguments
from modelmon.drift.cli import resolve as drift_resolve
from modelmon.settings import (
    Setting,
    Settings,
    SettingsError,
    Source,
    add_arguments,
    config_path,
    convert,
    parse_duration,
    read_config,
    web_settings,
)
from modelmon.sidecar.config import SIDECAR_SETTINGS

REPO = Path(__file__).resolve().parents[1]


class Section(msgspec.Struct, forbid_unknown_fields=True):
    size: Any = None
    delay: Any = None


class Entry(msgspec.Struct, forbid_unknown_fields=True):
    path: Any = None
    weight: Any = None


class File(msgspec.Struct, forbid_unknown_fields=True):
    listen: Any = None
    web_config_file: Any = None
    window: Any = None
    count: Any = None
    urls: Any = None
    section: Section | None = None
    entries: list[Entry] | None = None


TABLE = (
    Setting("config_file", ("--config.file", "--config"), ("MODELMON_CONFIG_FILE",
                                                          "MODELMON_CONFIG"), None, None,
            "the file", metavar="FILE"),
    *web_settings(9000),
    Setting("window", ("--window",), ("MODELMON_WINDOW",), ("window",), "15m", "window"),
    Setting("count", ("--count",), ("MODELMON_COUNT",), ("count",), "10", "count"),
    Setting("urls", ("--url",), ("MODELMON_URLS",), ("urls",), None, "urls", multiple=True),
    Setting("size", ("--section.size",), ("MODELMON_SECTION_SIZE",), ("section", "size"),
            "1MiB", "size"),
    Setting("delay", ("--section.delay",), ("MODELMON_SECTION_DELAY",), ("section", "delay"),
            "5s", "delay; 0 turns it off"),
    Setting("switch", ("--switch",), ("MODELMON_SWITCH",), None, None, "a switch", switch=True),
)


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p, TABLE)
    return p.parse_args(list(argv))


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def settings(*argv: str, env: dict[str, str] | None = None) -> Settings:
    args = parse(*argv)
    env = env or {}
    path, via = config_path(TABLE, args, env)
    file = read_config(path, via, File) if path else None
    return Settings(TABLE, args, env, file)


# -- precedence in every order -----------------------------------------------------------

SOURCES = ("flag", "env", "file", "default")


@pytest.mark.parametrize("present", [c for n in range(4) for c in
                                     itertools.combinations(SOURCES[:3], n)])
@pytest.mark.parametrize("name, values, getter", [
    ("window", {"flag": "1m", "env": "2m", "file": "3m"}, lambda s: s.duration("window")),
    ("count", {"flag": "1", "env": "2", "file": "3"}, lambda s: s.whole("count", 1)),
    ("size", {"flag": "1KiB", "env": "2KiB", "file": "3KiB"}, lambda s: s.size("size")),
    ("listen", {"flag": ":1", "env": ":2", "file": ":3"}, lambda s: s.listen("listen", 9000)),
])
def test_precedence_in_every_combination(tmp_path: Path, present: tuple[str, ...], name: str,
                                         values: dict[str, str], getter: Any) -> None:
    """Whatever subset of flag, variable and file sets a value, the first of them wins."""
    s = next(x for x in TABLE if x.name == name)
    argv: list[str] = []
    env: dict[str, str] = {}
    if "flag" in present:
        argv += [s.flag, values["flag"]]
    if "env" in present:
        env[s.var] = values["env"]
    path = tmp_path / "c.yaml"
    key = s.key
    assert key is not None
    doc = values["file"] if "file" in present else None
    text = f"{key[0]}:\n  {key[1]}: '{doc}'\n" if len(key) == 2 else f"{key[0]}: '{doc}'\n"
    write(path, text if doc is not None else "")
    got = settings("--config.file", str(path), *argv, env=env)
    want_source = next((src for src in SOURCES if src in present), "default")
    assert got.value(name).source.kind == want_source
    expected = settings(*([s.flag, values[want_source]] if want_source != "default" else []))
    assert getter(got) == getter(expected)


def test_blank_variable_is_unset_and_flag_wins_over_a_bad_variable(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "window: 3m\n")
    assert settings("--config", path, env={"MODELMON_WINDOW": "  "}).duration("window") == 180
    assert settings("--window", "1m", env={"MODELMON_WINDOW": "soon"}).duration("window") == 60


def test_default_of_the_table_or_replaced() -> None:
    s = settings()
    assert s.duration("window") == 900 and str(s.value("window").source) == "--window (default)"
    assert Settings(TABLE, parse(), {}, None, {"window": "1h"}).duration("window") == 3600


# -- errors name their source ----------------------------------------------------------


def _error(s: Settings, getter: Any) -> str:
    with pytest.raises(SettingsError) as info:
        getter(s)
    return str(info.value)


def test_errors_name_flag_variable_and_file_key(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "section:\n  size: lots\n")
    size = lambda s: s.size("size")  # noqa: E731
    assert _error(settings("--config.file", path), size) == (
        f"--config.file: {path}: key 'section.size': expected a size in bytes such as 8MiB, "
        "512KiB or 1048576, got 'lots'")
    assert _error(settings(env={"MODELMON_CONFIG_FILE": path}), size).startswith(
        f"MODELMON_CONFIG_FILE: {path}: key 'section.size': ")
    assert _error(settings("--config.file", path, env={"MODELMON_SECTION_SIZE": "x"}),
                  size).startswith("MODELMON_SECTION_SIZE: expected a size")
    assert _error(settings("--config.file", path, "--section.size", "y"),
                  size).startswith("--section.size: expected a size")
    count = lambda s: s.whole("count", 1)  # noqa: E731
    assert _error(settings("--count", "0"), count) == "--count: expected a whole number >= 1, " \
                                                      "got '0'"
    assert _error(settings(env={"MODELMON_SWITCH": "maybe"}), lambda s: s.boolean("switch")) \
        == "MODELMON_SWITCH: expected true or false, got 'maybe'"


def test_the_alias_typed_is_the_alias_named(tmp_path: Path) -> None:
    listen = lambda s: s.listen("listen", 9000)  # noqa: E731
    assert _error(settings("--listen", "x:y"), listen).startswith("--listen: invalid listen")
    assert _error(settings("--web.listen-address", "x:y"), listen).startswith(
        "--web.listen-address: invalid listen")
    assert _error(settings(env={"MODELMON_LISTEN": "x:y"}), listen).startswith(
        "MODELMON_LISTEN: invalid listen")
    path = write(tmp_path / "c.yaml", "listen: 'x:y'\n")
    assert _error(settings("--config", path), listen).startswith(
        f"--config: {path}: key 'listen': invalid listen")
    assert _error(settings(env={"MODELMON_CONFIG": path}), listen).startswith(
        f"MODELMON_CONFIG: {path}: key 'listen'")


def test_aliases_resolve_like_the_current_spelling(tmp_path: Path) -> None:
    assert settings("--listen", ":1").listen("listen", 9000) == ("0.0.0.0", 1)
    assert settings("--web.listen-address", ":2").listen("listen", 9000) == ("0.0.0.0", 2)
    assert settings(env={"MODELMON_LISTEN": ":3"}).listen("listen", 9000) == ("0.0.0.0", 3)
    # the current name wins over the old one
    both = {"MODELMON_WEB_LISTEN_ADDRESS": ":4", "MODELMON_LISTEN": ":5"}
    assert settings(env=both).listen("listen", 9000) == ("0.0.0.0", 4)
    path = write(tmp_path / "c.yaml", "count: 7\n")
    assert settings("--config", path).whole("count", 1) == 7
    assert settings(env={"MODELMON_CONFIG": path}).whole("count", 1) == 7
    other = write(tmp_path / "d.yaml", "count: 8\n")
    assert settings(env={"MODELMON_CONFIG_FILE": other, "MODELMON_CONFIG": path}
                    ).whole("count", 1) == 8


def test_repeatable_settings(tmp_path: Path) -> None:
    assert settings("--url", "a,b", "--url", "c").items("urls") == (
        ["a", "b", "c"], Source("flag", "--url"))
    assert settings(env={"MODELMON_URLS": " a, ,b "}).items("urls")[0] == ["a", "b"]
    path = write(tmp_path / "c.yaml", "urls: [a, b]\n")
    assert settings("--config", path).items("urls")[0] == ["a", "b"]
    bad = write(tmp_path / "bad.yaml", "urls: [{a: 1}]\n")
    assert _error(settings("--config", bad), lambda s: s.items("urls")).startswith(
        f"--config: {bad}: key 'urls': expected a list of values")


def test_relative_paths_in_the_file_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "web.yml").write_text("")
    path = write(tmp_path / "conf" / "c.yaml", "web_config_file: web.yml\n")
    got, src = settings("--config", path).web_config_file()
    assert got == str((tmp_path / "conf" / "web.yml").resolve()) and src.kind == "file"
    assert settings("--web.config.file", "web.yml").path("web_config_file")[0] == "web.yml"
    assert "(not found)" in _error(settings("--web.config.file", "nope.yml"),
                                   lambda s: s.web_config_file())


# -- the file: unknown keys with their path ---------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("lisen: 1\n", "key 'lisen': unknown key (expected one of listen, web_config_file, window, "
                   "count, urls, section, entries)"),
    ("section:\n  sise: 1\n", "key 'section.sise': unknown key (expected one of size, delay)"),
    ("entries:\n  - {path: a}\n  - {path: b, wieght: 2}\n",
     "key 'entries[1].wieght': unknown key (expected one of path, weight)"),
    ("section: 5\n", "key 'section': expected a mapping with keys size, delay, got int"),
    ("entries: {a: 1}\n", "key 'entries': expected a list, got mapping"),
    ("entries: [5]\n", "key 'entries[0]': expected a mapping with keys path, weight, got int"),
    ("- 1\n", "expected a mapping with keys listen, web_config_file"),
    ("section: {size: 1\n", "not valid YAML at line 2, column 1"),
])
def test_file_errors_name_the_key_path(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(SettingsError) as info:
        settings("--config.file", path)
    assert str(info.value).startswith(f"--config.file: {path}: "), info.value
    assert message in str(info.value)


def test_convert_with_a_prefix() -> None:
    with pytest.raises(SettingsError, match=r"^f\.yaml: key 'models\[3\]\.x': unknown key"):
        convert({"x": 1}, Entry, "f.yaml", "models[3]")


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="^--config: .*gone.yaml: cannot read the config file"):
        settings("--config", str(tmp_path / "gone.yaml"))
    empty = write(tmp_path / "e.yaml", "# nothing\n")
    assert settings("--config", empty).duration("window") == 900


# -- durations: what zero is -----------------------------------------------------------


@pytest.mark.parametrize("zero", ["0", "0s", "0ms", "0.0", "0m", "0h0m"])
def test_zero_only_where_allowed(zero: str) -> None:
    assert parse_duration(zero, allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="must be greater than zero"):
        parse_duration(zero)
    assert settings("--section.delay", zero).duration("delay", allow_zero=True) == 0.0
    assert _error(settings("--window", zero), lambda s: s.duration("window")) == (
        f"--window: invalid duration '{zero}': must be greater than zero")


@pytest.mark.parametrize("bad", ["-1s", "5 seconds", "1m1h", "true"])
def test_bad_durations_are_refused_even_where_zero_is_allowed(bad: str) -> None:
    with pytest.raises(SettingsError, match="^--section.delay: invalid duration"):
        settings(f"--section.delay={bad}").duration("delay", allow_zero=True)


def test_yaml_booleans_are_not_durations(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "window: yes\n")
    assert _error(settings("--config", path), lambda s: s.duration("window")).startswith(
        f"--config: {path}: key 'window': expected a duration")


def test_the_commands_zero_rule() -> None:
    """Zero is allowed by exactly the settings whose documentation says what zero does."""
    p = argparse.ArgumentParser()
    drift_arguments(p)
    cfg = drift_resolve(p.parse_args(["--prometheus-url", "http://p:9090", "--evaluation-delay",
                                      "0m", "--baseline-refresh", "0.0"]), {})
    assert (cfg.evaluation_delay, cfg.baseline_refresh) == (0.0, 0.0)
    with pytest.raises(DriftConfigError, match="--window: invalid duration '0m': must be greater"):
        drift_resolve(p.parse_args(["--scrape", "http://a/m", "--window", "0m"]), {})


# -- the two commands' tables ---------------------------------------------------------


@pytest.mark.parametrize("table", [SIDECAR_SETTINGS, DRIFT_SETTINGS], ids=["sidecar", "drift"])
def test_tables_are_consistent(table: tuple[Setting, ...]) -> None:
    names = [s.name for s in table]
    assert len(set(names)) == len(names)
    flags = [f for s in table for f in s.flags]
    assert len(set(flags)) == len(flags)
    for s in table:
        # the variable of the current flag: dots and dashes as underscores
        assert s.var == "MODELMON_" + s.flag[2:].upper().replace(".", "_").replace("-", "_") \
            or s.name in ("baseline", "scrape"), s
    by_name = {s.name: s for s in table}
    assert by_name["listen"].flags == ("--web.listen-address", "--listen")
    assert by_name["listen"].env == ("MODELMON_WEB_LISTEN_ADDRESS", "MODELMON_LISTEN")
    assert by_name["web_config_file"].flags == ("--web.config.file",)
    assert by_name["listen"].key == ("listen",)
    assert [f for s in table for f in s.flags if "config" in f and s.key is None] == [
        "--config.file", "--config"]


def test_drift_file_sets_every_setting(tmp_path: Path) -> None:
    """The drift exporter's whole-settings file: flags and variables still win over it."""
    (tmp_path / "token").write_text("t\n")
    path = write(tmp_path / "drift.yaml", """
        prometheus_url: http://prom:9090
        window: 2h
        interval: 30s
        min_samples: 50
        listen: 127.0.0.1:9400
        evaluation_delay: 0s
        baseline_refresh: 5m
        prometheus:
          headers: ["X-Scope-OrgID: team-a"]
          bearer_token_file: token
          timeout: 5s
          concurrency: 2
        verdict: {alpha: 0.01}
        models:
          loan: {window: 4h}
        """)
    p = argparse.ArgumentParser()
    drift_arguments(p)
    cfg = drift_resolve(p.parse_args(["--config.file", path]), {})
    assert cfg.mode == "query" and cfg.prometheus_url == "http://prom:9090"
    assert (cfg.window, cfg.interval, cfg.min_samples) == (7200, 30, 50)
    assert (cfg.host, cfg.port, cfg.evaluation_delay, cfg.baseline_refresh) == (
        "127.0.0.1", 9400, 0.0, 300.0)
    assert cfg.query_options is not None
    assert cfg.query_options.headers == (("X-Scope-OrgID", "team-a"),)
    assert cfg.query_options.bearer_token_file == str((tmp_path / "token").resolve())
    assert (cfg.query_options.timeout, cfg.concurrency) == (5.0, 2)
    assert cfg.verdict.alpha == 0.01 and cfg.models["loan"].window == 4 * 3600
    cfg = drift_resolve(p.parse_args(["--config", path, "--window", "3h"]),
                        {"MODELMON_INTERVAL": "1m"})
    assert (cfg.window, cfg.interval) == (3 * 3600, 60)
    # one mode only, whatever the sources
    with pytest.raises(DriftConfigError, match=r"^--scrape and --config: .*key 'prometheus_url': "
                                               "choose one mode"):
        drift_resolve(p.parse_args(["--config", path, "--scrape", "http://a/m"]), {})
    scrape = write(tmp_path / "s.yaml", "scrape: [http://a/m]\nprometheus:\n  timeout: 5s\n")
    with pytest.raises(DriftConfigError, match=r"key 'prometheus.timeout': only used in query"):
        drift_resolve(p.parse_args(["--config", scrape]), {})
    bad = write(tmp_path / "bad.yaml", "prometheus:\n  tiemout: 5s\n")
    with pytest.raises(DriftConfigError, match=r"key 'prometheus.tiemout': unknown key \(expected "
                                               r"one of headers, "):
        drift_resolve(p.parse_args(["--config", bad]), {})


@pytest.mark.parametrize("command", ["sidecar", "drift"])
def test_cli_errors_are_one_line_exit_2(tmp_path: Path, command: str) -> None:
    path = write(tmp_path / "c.yaml", "lisen: :9000\n")
    proc = subprocess.run([sys.executable, "-m", "modelmon", command, "--config.file", path],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"modelmon {command}: error: --config.file: {path}: key "
                                   f"'lisen': " + proc.stderr.split("'lisen': ", 1)[1].strip())
    assert "unknown key" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


# -- the documentation: one table per command ---------------------------------------------


@pytest.mark.parametrize("doc, table", [("docs/sidecar.md", SIDECAR_SETTINGS),
                                        ("docs/drift.md", DRIFT_SETTINGS)],
                         ids=["sidecar", "drift"])
def test_docs_have_one_row_per_setting(doc: str, table: tuple[Setting, ...]) -> None:
    text = (REPO / doc).read_text(encoding="utf-8")
    rows = [ln for ln in text.splitlines() if ln.startswith("|")]
    for s in table:
        row = next((r for r in rows if r.split("|")[1].strip().startswith(f"`{s.flag}")), None)
        assert row is not None, f"{doc}: no table row for {s.flag}"
        for name in (*s.flags, *s.env):
            assert f"`{name}" in row, (name, row)
        if s.file_key:
            assert f"`{s.file_key}`" in row, (s.file_key, row)
    assert "flag > `MODELMON_*` variable > file > default" in text
