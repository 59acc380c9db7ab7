"""The README's first command, run as a user would, in the suite."""

import subprocess
import sys


def test_demo_quick_catches_every_injected_drift_and_nothing_else():
    r = subprocess.run([sys.executable, "-m", "modelmon", "demo", "--quick"], capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    out = r.stdout
    assert "PASS: every injected drift was flagged, and nothing else." in out
    for feature in ("credit_score", "loan_amount", "purpose", "employment_years"):
        line = next(x for x in out.splitlines() if x.startswith(f"│ {feature} "))
        assert "caught" in line, line
    assert out.count("clean, not flagged") == 10
    assert "FALSE ALARM" not in out and "MISSED" not in out
