"""values.schema.json: it describes values.yaml exactly, and Helm rejects bad values with a
message that names the field. Combinations the schema cannot express fail in the templates,
also with a message naming the values."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from ..conftest import require_module
from .conftest import CHART, render_chart

helm = require_module("helm_python", "helm-python-sdk")

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
BASELINE = "schema_version: 1\nmodel: loan\n"  # enough for the templates, not for modelmon


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_schema_is_draft7_and_closed_at_the_top() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False


def test_default_values_are_valid() -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)


def test_schema_and_values_yaml_have_the_same_keys() -> None:
    """Every key of values.yaml is in the schema, and every key of an object the chart owns
    (additionalProperties: false) is in values.yaml, unless its default is ``{}``: a section
    of optional keys whose absence means the program's defaults (exporter.driftConfig.verdict)."""
    extra_ok = {"global", "initialDelaySeconds", "successThreshold",
                "terminationGracePeriodSeconds"}
    problems: list[str] = []

    def walk(values: Any, node: dict[str, Any], path: str) -> None:
        node = _resolve(node)
        if not isinstance(values, dict) or "properties" not in node:
            return
        props = node["properties"]
        for k, v in values.items():
            if k not in props:
                problems.append(f"{path}{k}: in values.yaml, not in the schema")
            else:
                walk(v, props[k], f"{path}{k}.")
        if node.get("additionalProperties") is False and values:
            for k in props:
                if k not in values and k not in extra_ok:
                    problems.append(f"{path}{k}: in the schema, not in values.yaml")

    walk(VALUES, SCHEMA, "")
    assert not problems, problems


def test_replica_counts_have_a_minimum_of_zero() -> None:
    props = SCHEMA["properties"]
    for part in ("exporter", "sidecar"):
        rc = props[part]["properties"]["replicaCount"]
        assert rc["type"] == "integer" and rc["minimum"] == 0


BAD = [
    # (values, where, what): Helm's message names the JSON pointer of the field
    ({"exporter": {"replicaCount": -1}}, "/exporter/replicaCount", "minimum"),
    ({"exporter": {"replicaCount": "two"}}, "/exporter/replicaCount", "want integer"),
    ({"sidecar": {"replicaCount": -3}}, "/sidecar/replicaCount", "minimum"),
    ({"replicas": 2}, "additional properties 'replicas' not allowed", ""),
    ({"replicaCount": 2}, "additional properties 'replicaCount' not allowed", ""),
    ({"serviceMonitor": {"enabled": "yes"}}, "/serviceMonitor/enabled", "want boolean"),
    ({"exporter": {"mode": "push"}}, "/exporter/mode", "must be one of"),
    ({"exporter": {"store": {"url": "prometheus:9090"}}}, "/exporter/store/url", "pattern"),
    ({"exporter": {"store": {"auth": {"existingSecret": {"nmae": "x"}}}}},
     "/exporter/store/auth/existingSecret", "additional properties 'nmae' not allowed"),
    ({"exporter": {"window": "15 minutes"}}, "/exporter/window", "pattern"),
    ({"exporter": {"driftConfig": {"methods": ["psi", "bogus"]}}},
     "/exporter/driftConfig/methods/1", "must be one of"),
    ({"exporter": {"driftConfig": {"verdict": {"alpha": 1.5}}}},
     "/exporter/driftConfig/verdict/alpha", "exclusiveMaximum"),
    ({"exporter": {"driftConfig": {"verdict": {"alpha": 0}}}},
     "/exporter/driftConfig/verdict/alpha", "exclusiveMinimum"),
    ({"exporter": {"driftConfig": {"verdict": {"method": "energy"}}}},
     "/exporter/driftConfig/verdict/method", "must be one of 'wasserstein_normed'"),
    ({"exporter": {"driftConfig": {"models": {"loan": {"verdict": {"method": "chi2_pvalue"}}}}}},
     "/exporter/driftConfig/models/loan/verdict/method", "must be one of"),
    ({"exporter": {"driftConfig": {"verdict": {"method": {"categorical": "ks"}}}}},
     "/exporter/driftConfig/verdict/method/categorical", "must be one of 'jensen_shannon'"),
    ({"exporter": {"driftConfig": {"verdict": {"effect": {"energy": 0.1}}}}},
     "invalid propertyName 'energy'", "must be one of"),
    ({"exporter": {"driftConfig": {"verdict": {"method": "psi", "effect": -0.1}}}},
     "/exporter/driftConfig/verdict/effect", "minimum"),
    ({"exporter": {"driftConfig": {"verdict": {"effect": 0.1}}}},
     "/exporter/driftConfig/verdict", "missing property 'method'"),
    ({"exporter": {"driftConfig": {"models": {"loan": {"verdict": {"alhpa": 0.01}}}}}},
     "/exporter/driftConfig/models/loan/verdict", "additional properties 'alhpa' not allowed"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", "must be one of"),
    ({"baselines": {"bad name": BASELINE}}, "invalid propertyName 'bad name'",
     "does not match pattern"),
    ({"podMonitor": {"portName": "a-port-name-that-is-too-long"}}, "/podMonitor/portName",
     "maxLength"),
    ({"dashboards": {"labelValue": 1}}, "/dashboards/labelValue", "want string"),
    ({"exporter": {"resources": "small"}}, "/exporter/resources", "want object"),
]


@pytest.mark.parametrize("values,where,what", BAD, ids=[json.dumps(b[0]) for b in BAD])
def test_helm_rejects_bad_values_naming_the_field(values, where, what) -> None:
    with pytest.raises(helm.HelmValuesError) as exc:
        render_chart(values)
    msg = str(exc.value)
    assert "values don't meet the specifications of the schema" in msg
    assert where in msg and what in msg, msg
    # the same values, checked with jsonschema directly
    merged = helm.Chart.load(CHART).merge_values(values)
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(merged))
    assert errors
    pointer = "/" + "/".join(str(p) for p in errors[0].absolute_path)
    if where.startswith("/"):
        assert where.startswith(pointer) or pointer.startswith(where), (pointer, where)


def test_verdict_methods_are_the_exporters() -> None:
    """The schema's verdict and drift methods are the exporter's lists, in its order."""
    from modelmon.catalogue import DRIFT_METHODS
    from modelmon.stats.verdict import NUMERIC_ONLY_VERDICT_METHODS, VERDICT_METHODS

    drift = SCHEMA["properties"]["exporter"]["properties"]["driftConfig"]["properties"]
    assert drift["methods"]["items"]["enum"] == list(DRIFT_METHODS)
    model = drift["models"]["additionalProperties"]["properties"]
    assert model["methods"]["items"]["enum"] == list(DRIFT_METHODS)
    assert drift["verdict"] == model["verdict"] == {"$ref": "#/definitions/verdict"}
    verdict = SCHEMA["definitions"]["verdict"]["properties"]
    one, per_kind = verdict["method"]["anyOf"]
    categorical = [m for m in VERDICT_METHODS if m not in NUMERIC_ONLY_VERDICT_METHODS]
    assert one["enum"] == per_kind["properties"]["numeric"]["enum"] == list(VERDICT_METHODS)
    assert per_kind["properties"]["categorical"]["enum"] == categorical
    assert verdict["effect"]["anyOf"][1]["propertyNames"]["enum"] == list(VERDICT_METHODS)


def test_lint_reports_bad_values() -> None:
    report = helm.lint(CHART, {"exporter": {"replicaCount": -1}}, strict=True)
    assert any("/exporter/replicaCount" in e for e in report["errors"]), report


FAILS = [
    ({"exporter": {"mode": "scrape"}},
     "exporter.mode=scrape needs exporter.scrape.urls"),
    ({"exporter": {"mode": "scrape"}, "sidecar": {"enabled": True, "replicaCount": 2},
      "baselines": {"loan": BASELINE}},
     "set sidecar.replicaCount to 1"),
    ({"sidecar": {"enabled": True}}, "the modelmon sidecar needs at least one baseline"),
    ({"sidecar": {"enabled": True, "baselines": ["nope"]}, "baselines": {"loan": BASELINE}},
     'sidecar.baselines: baseline "nope" is not a key of baselines (have: loan)'),
    ({"exporter": {"store": {"auth": {"bearerToken": "t", "username": "u", "password": "p"}}}},
     "use a bearer token or basic auth, not both"),
    ({"exporter": {"store": {"auth": {"password": "p"}}}},
     "a basic auth password needs a user"),
    ({"exporter": {"store": {"auth": {"username": "u"}}}},
     "a basic auth user needs a password"),
    ({"exporter": {"store": {"auth": {"bearerToken": "t", "existingSecret": {"name": "s"}}}}},
     "not both"),
    ({"exporter": {"store": {"url": ""}}}, "exporter.store.url is required in query mode"),
    ({"exporter": {"store": {"tls": {"existingSecret": "ca", "caKey": "ca.crt"}}}},
     "TLS settings need an https:// exporter.store.url"),
    ({"exporter": {"store": {"url": "https://p:9090", "tls": {"existingSecret": "ca",
                                                               "certKey": "tls.crt"}}}},
     "needs both certKey and keyKey"),
    ({"exporter": {"mode": "scrape", "scrape": {"urls": ["http://m:8000/metrics"]},
                   "driftConfig": {"methods": ["psi"]}}},
     "exporter.driftConfig.methods: only used in query mode"),
    ({"exporter": {"mode": "scrape", "scrape": {"urls": ["http://m:8000/metrics"]},
                   "driftConfig": {"models": {"loan": {"window": "2h"}}}}},
     "exporter.driftConfig.models.loan.window: only used in query mode"),
    ({"exporter": {"mode": "scrape", "scrape": {"urls": ["http://m:8000/metrics"]},
                   "driftConfig": {"models": {"loan": {"min_samples": 50,
                                                       "verdict": {"alpha": 0.01}}}}}},
     "exporter.driftConfig.models.loan.min_samples: only used in query mode"),
    ({"exporter": {"mode": "scrape", "scrape": {"urls": ["http://m:8000/metrics"]},
                   "driftConfig": {"models": {"loan": {"methods": ["psi"]}}}}},
     "exporter.driftConfig.models.loan.methods: only used in query mode"),
]


@pytest.mark.parametrize("values,message", FAILS, ids=[m for _, m in FAILS])
def test_templates_reject_bad_combinations(values, message) -> None:
    with pytest.raises(helm.HelmError) as exc:
        render_chart(values)
    assert message in str(exc.value)
