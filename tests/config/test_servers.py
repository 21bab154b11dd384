"""The README's production command runs Uvicorn with exactly ``config.servers.UVICORN_ARGS`` (the flags the bench
and the hardening test use), so the documented server is the measured one."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from config.servers import APPLICATION, UVICORN_ARGS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_runs_uvicorn_with_the_measured_flags() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"^\.venv/bin/uvicorn (.+?)$(?<!\\)", text.replace("\\\n", " "), flags=re.MULTILINE)
    assert found is not None, "the README shows no uvicorn command"
    argv = shlex.split(found.group(1), comments=True)
    assert argv[-1] == APPLICATION
    where = {"--host": "0.0.0.0", "--port": "8000", "--workers": "2"}  # noqa: S104 - the README's public bind
    assert _options(argv[:-1]) == {**_options(list(UVICORN_ARGS)), **where}


def _options(argv: list[str]) -> dict[str, str | None]:
    """``--name value`` and bare ``--flag`` (value ``None``) of a command line."""
    options: dict[str, str | None] = {}
    for i, arg in enumerate(argv):
        if arg.startswith("--"):
            following = argv[i + 1] if i + 1 < len(argv) else None
            options[arg] = following if following is not None and not following.startswith("--") else None
    return options
