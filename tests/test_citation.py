"""One version everywhere: CITATION.cff, the package, pyproject.toml and the book's citation page."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import vaelib

ROOT = Path(__file__).resolve().parent.parent


def test_the_version_and_the_citation_agree() -> None:
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    page = (ROOT / "book" / "citing.md").read_text()
    assert cff["version"] == vaelib.__version__ == project["version"]
    assert f"Version **{cff['version']}**" in page and f"edition = {{{cff['version']}}}" in page
    assert str(cff["date-released"]) in page
    key = re.search(r"@book\{(\w+),", page)
    assert key is not None and key.group(1) != "YourReferenceHere"
    assert cff["preferred-citation"]["title"] == cff["title"]
    assert cff["title"].replace("VAE", "{VAE}") in page
