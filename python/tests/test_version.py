"""Smoke tests of the installed package: import, re-export, version."""

import re
import sys
from pathlib import Path

import lbcore
import lbcore._native

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - CI runs 3.11
    tomllib = None

ROOT = Path(__file__).resolve().parents[2]


def cargo_version() -> str:
    """The `[workspace.package] version` of the Cargo workspace."""
    text = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    if tomllib is not None:
        return tomllib.loads(text)["workspace"]["package"]["version"]
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_version_matches_cargo() -> None:
    assert lbcore.version() == cargo_version()
    assert lbcore.__version__ == cargo_version()


def test_reexports_native() -> None:
    assert lbcore.version is lbcore._native.version
    assert set(lbcore.__all__) <= set(dir(lbcore))


def test_package_is_typed() -> None:
    package_dir = Path(lbcore.__file__).parent
    assert (package_dir / "py.typed").is_file()
    assert (package_dir / "_native.pyi").is_file()
