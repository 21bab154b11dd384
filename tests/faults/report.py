"""``python -m tests.faults.report``: the battery's last line, from the result file the test session wrote."""

from __future__ import annotations

import json
import sys

from tests.faults.tally import artifacts_dir


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
