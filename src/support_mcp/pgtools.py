"""Find the PostgreSQL client programs (pg_dump, pg_restore, psql) that match the server."""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

from .errors import UpstreamUnavailable


def _candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    spec = importlib.util.find_spec("pgserver")  # located, not imported (import has side effects)
    if spec is not None and spec.submodule_search_locations:
        dirs.append(Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin")
    dirs += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"))]
    dirs += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return dirs


@cache
def _major(binary: Path) -> int | None:
    try:
        text = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                              timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)(?:\.\d+)?", text)
    return int(m.group(1)) if m else None


def find_bin_dir(server_major: int, needs: tuple[str, ...] = ("pg_dump", "pg_restore", "psql")) -> Path:
    """The bin dir whose tools have the server's major version (else the nearest newer one)."""
    best: tuple[int, Path] | None = None
    for d in _candidate_dirs():
        if not all((d / n).is_file() and os.access(d / n, os.X_OK) for n in needs):
            continue
        major = _major(d / needs[0])
        if major is None or major < server_major:
            continue
        if best is None or major < best[0]:
            best = (major, d)
    if best is None:
        found = shutil.which("pg_dump")
        raise UpstreamUnavailable(
            f"no pg_dump/pg_restore/psql of version >= {server_major} found "
            f"(saw {found or 'none'}); install the PostgreSQL {server_major} client tools"
        )
    return best[1]
