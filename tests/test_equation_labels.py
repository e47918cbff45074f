"""Every equation that vaelib's docstrings cite, ``Eq. (eq-label)``, is defined on a page of the book.

On the API page these references become numbered links (book/_ext/vaelib_book.py); this test finds a
dangling label without building the book.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"\((eq-[a-z0-9][a-z0-9-]*)\)")
DEFINED = re.compile(r"\$\$ *\((eq-[a-z0-9-]+)\)")


def _page_text(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf8"))["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf8")


def test_every_cited_equation_is_defined() -> None:
    pages = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))
    defined = {label for page in pages for label in DEFINED.findall(_page_text(page))}
    cited: dict[str, list[str]] = {}
    for source in sorted((ROOT / "vaelib").rglob("*.py")):
        for label in CITED.findall(source.read_text(encoding="utf8")):
            cited.setdefault(label, []).append(source.relative_to(ROOT).as_posix())
    assert len(defined) > 50 and len(cited) > 20
    dangling = {label: files for label, files in cited.items() if label not in defined}
    assert not dangling, f"equations cited in docstrings but defined on no page: {dangling}"
