"""tools/, resources/ and sql/ ship inside the installed package (wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_installed_package_sees_sql_tools_and_resources() -> None:
    sql = files("support_mcp.sql")
    assert (sql / "global" / "0001_tenant_registry.sql").is_file()
    assert (sql / "tenant" / "0001_support_desk.sql").is_file()
    assert (sql / "queries" / "registry.sql").is_file()
    import support_mcp.resources
    import support_mcp.tools

    assert support_mcp.tools.__name__ == "support_mcp.tools"
    assert support_mcp.resources.__name__ == "support_mcp.resources"


def test_wheel_contains_sql_tools_and_resources(tmp_path: Path) -> None:
    # build from a clean copy: a stale build/ directory in the checkout would hide missing packages
    src = tmp_path / "src-copy"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        "build", "dist", "*.egg-info", ".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".hypothesis", "bench"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("support_mcp-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(ROOT)) for d in ("sql", "tools", "resources")
                for p in (ROOT / d).rglob("*") if p.suffix in (".sql", ".py") and "__pycache__" not in p.parts}
    assert expected, "nothing to ship?"
    missing = {e for e in expected if f"support_mcp/{e}" not in names}
    assert not missing, f"not in the wheel: {sorted(missing)}"
    core = {f"support_mcp/{p.relative_to(ROOT / 'src' / 'support_mcp')}" for p in (ROOT / "src" / "support_mcp").rglob("*.py")
            if "__pycache__" not in p.parts}
    assert not core - names, f"core modules not in the wheel: {sorted(core - names)}"
    # the offline model's tokenizer and the BM25 stopwords ship too (nothing is fetched at run time)
    assert {"support_mcp/kb/model_files/all-MiniLM-L6-v2/tokenizer.json",
            "support_mcp/kb/model_files/all-MiniLM-L6-v2/tokenizer_config.json",
            "support_mcp/kb/model_files/bm25/english.txt"} <= names
    # the evaluation task suite and its fixture (`eval tasks --suite`)
    assert {"support_mcp/episodes/suite/tasks.jsonl", "support_mcp/episodes/suite/northwind.json"} <= names


def test_pre_1_0_dependencies_are_bounded() -> None:
    """A 0.x package may break its API in a minor release: each has an upper bound or an exact pin."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    unbounded = []
    for dep in map(Requirement, deps):
        if version(dep.name).startswith("0.") and not any(s.operator in ("<", "<=", "==", "~=")
                                                          for s in dep.specifier):
            unbounded.append(str(dep))
    assert not unbounded, f"bound these 0.x dependencies: {unbounded}"
