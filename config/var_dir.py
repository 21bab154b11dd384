"""The embedded default's local state folder (``var/``): private to the user who runs Axisor.

It holds the SQLite database (session keys, password hashes), the generated secrets, the demo login and the
simulator's state. The folder is kept at 0700 and every file in it at 0600, including files an older version left
world-readable; the SQLite file is created 0600 before SQLite opens it (its ``-wal``/``-shm`` files copy that mode).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
PRIVATE_UMASK = 0o077


def secure_var_dir(var_dir: Path, *, private_files: tuple[Path, ...] = ()) -> None:
    """Create ``var_dir`` (0700) if needed, tighten it and every regular file in it, and create each of
    ``private_files`` (inside ``var_dir``) empty at 0600 when missing."""
    var_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _chmod(var_dir, DIR_MODE)
    for path in private_files:
        if path.parent.resolve() == var_dir.resolve() and not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for entry in var_dir.iterdir():
        if entry.is_file() and not entry.is_symlink():
            _chmod(entry, FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    if stat.S_IMODE(path.stat().st_mode) != mode:
        path.chmod(mode)


def private_umask() -> int:
    """Make every file this process creates from now on private to its user; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)
