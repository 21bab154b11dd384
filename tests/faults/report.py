"""``python -m tests.faults.report``: the battery's last line, from the result file the test session wrote."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    """Where the battery writes ``result.json`` (``$AXISOR_TEST_ARTIFACTS/faults``). No Django import here: this
    module runs on its own after the test session (``make faults``)."""
    base = Path(os.environ.get("AXISOR_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))
    path = base / "faults"
    path.mkdir(parents=True, exist_ok=True)
    return path


def main() -> int:
    path = artifacts_dir() / "result.json"
    if not path.exists():
        sys.stderr.write(f"no battery result at {path}\n")
        return 1
    data = json.loads(path.read_text())
    for scenario in data["scenarios"]:
        for note in scenario["notes"]:
            sys.stdout.write(f"{scenario['scenario']}: {note}\n")
    total = data["total"]
    keys = ("trials", "duplicates", "lost", "misattributed", "max_terminal_s")
    sys.stdout.write("RESULT " + " ".join(f"{key}={total[key]}" for key in keys) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
