"""Build the book once, from the committed notebooks, and check the HTML a reader gets.

The build runs ``jupyter-book build`` with warnings as errors and nitpicky references, exactly as
``make book`` does, except that notebook execution is off (the notebooks are committed executed;
``pytest --nbval`` re-executes them) and everything is written under a pytest temporary
directory, so that no ``_build`` folder or jupyter cache appears in the repository.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

yaml = pytest.importorskip("yaml")
pytest.importorskip("jupyter_book")

from docutils.nodes import make_id  # noqa: E402  (docutils comes with jupyter-book)

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 900

EQ_LABEL = re.compile(r"\$\$[ \t]*\((eq-[A-Za-z0-9_.:-]+)\)[ \t]*$", re.MULTILINE)
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
EQNO = re.compile(r'<span class="eqno">\(([^)<]*)\)')
SECTION_NUMBER = re.compile(r'<h1>\s*<span class="section-number">([0-9.]*[0-9])\.?\s*</span>')


# --------------------------------------------------------------------------------------------
# Table of contents


def _toc() -> dict:
    return yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf8"))


def _walk_entries(entries: list[dict], numbered: bool, out: list[tuple[str, bool]]) -> None:
    for entry in entries or []:
        if "file" in entry:
            out.append((entry["file"], numbered))
        for key in ("sections", "chapters"):
            _walk_entries(entry.get(key, []), numbered, out)
        for sub in entry.get("subtrees", []):
            _walk_entries(sub.get("entries", []), numbered or bool(sub.get("numbered")), out)


def toc_files() -> list[tuple[str, bool]]:
    """Every document of the toc, as (docname without suffix, is it in a numbered part)."""
    toc = _toc()
    out: list[tuple[str, bool]] = [(toc["root"], bool(toc.get("numbered")))]
    _walk_entries(toc.get("chapters", []), bool(toc.get("numbered")), out)
    for part in toc.get("parts", []):
        _walk_entries(part.get("chapters", []), bool(part.get("numbered")), out)
    _walk_entries(toc.get("sections", []), bool(toc.get("numbered")), out)
    return [(str(Path(f).with_suffix("")) if Path(f).suffix in {".md", ".ipynb"} else f, n) for f, n in out]


def source_of(docname: str) -> Path:
    for suffix in (".md", ".ipynb", ".rst"):
        path = ROOT / f"{docname}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no source file for toc entry {docname!r}")


def without_code_fences(text: str) -> str:
    """Markdown with fenced code blocks removed (examples of markup are not equations)."""
    kept, fence = [], None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            if not line.strip()[len(match.group(1)) :].strip():
                fence = None
        elif fence is None:
            kept.append(line)
    return "\n".join(kept)


def markdown_text(path: Path) -> str:
    """The Markdown a page is written in (for a notebook: its Markdown cells), without code fences."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf8"))
        cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "markdown"]
        text = "\n\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells)
    else:
        text = path.read_text(encoding="utf8")
    return without_code_fences(text)


# --------------------------------------------------------------------------------------------
# The build


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    pytest.skip("jupyter-book executable not found")


def _test_config(tmp: Path) -> Path:
    """_config.yml with execution off and paths made absolute, written into ``tmp``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    execute = config.setdefault("execute", {})
    execute["execute_notebooks"] = "off"
    execute["cache"] = str(tmp / "jupyter_cache")
    # Jupyter Book resolves local extension folders relative to the config file.
    sphinx = config.setdefault("sphinx", {})
    local = sphinx.get("local_extensions") or {}
    sphinx["local_extensions"] = {name: str((ROOT / path).resolve()) for name, path in local.items()}
    path = tmp / "_config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")
    return path


class Build:
    def __init__(self, returncode: int, log: str, html: Path, seconds: float) -> None:
        self.returncode, self.log, self.html, self.seconds = returncode, log, html, seconds


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Build:
    tmp = tmp_path_factory.mktemp("book")
    out = tmp / "out"
    cmd = [
        *_jupyter_book(), "build", str(ROOT),
        "--config", str(_test_config(tmp)),
        "--toc", str(ROOT / "_toc.yml"),
        "--path-output", str(out),
        "-W", "-n", "--keep-going",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    had_build = (ROOT / "_build").exists()
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
    )
    seconds = time.perf_counter() - start
    if not had_build:
        assert not (ROOT / "_build").exists(), "the book test wrote _build into the repository"
    return Build(proc.returncode, proc.stdout + proc.stderr, out / "_build" / "html", seconds)


def _require_built(book: Build) -> None:
    if book.returncode != 0:
        pytest.fail("the book did not build; see test_build_succeeds", pytrace=False)


def _pages(book: Build) -> list[Path]:
    return sorted(p for p in book.html.rglob("*.html") if "mathjax" not in p.relative_to(book.html).parts)


# --------------------------------------------------------------------------------------------
# HTML parsing


class _Assets(HTMLParser):
    """Collects the URLs a page loads: <script src>, <link href>, <img src>, <iframe src> ..."""

    LOADS = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src",
             "embed": "src", "audio": "src", "video": "src", "track": "src"}  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        want = self.LOADS.get(tag)
        for name, value in attrs:
            if name == want and value:
                self.loads.append((tag, value))


def loaded_urls(page: Path) -> list[tuple[str, str]]:
    parser = _Assets()
    parser.feed(page.read_text(encoding="utf8"))
    return parser.loads


def resolve_local(html_root: Path, page: Path, url: str) -> Path:
    """The file that a relative URL on ``page`` points at."""
    rel_page = page.relative_to(html_root).as_posix()
    target = posixpath.normpath(posixpath.join(posixpath.dirname(rel_page), urlsplit(url).path))
    return html_root / target


def has_math(html: str) -> bool:
    return bool(re.search(r'class="[^"]*\bmath\b', html))


# --------------------------------------------------------------------------------------------
# Tests


def test_build_succeeds(book: Build) -> None:
    assert book.returncode == 0, f"jupyter-book build failed (rc={book.returncode}):\n{book.log[-6000:]}"
    assert (book.html / "index.html").is_file()
    print(f"book built in {book.seconds:.1f} s")


def test_every_toc_file_has_a_page(book: Build) -> None:
    _require_built(book)
    missing = [doc for doc, _ in toc_files() if not (book.html / f"{doc}.html").is_file()]
    assert not missing, f"toc entries without an HTML page: {missing}"


def test_nothing_is_loaded_from_the_network(book: Build) -> None:
    _require_built(book)
    remote = []
    for page in _pages(book):
        for tag, url in loaded_urls(page):
            scheme = urlsplit(url).scheme
            if url.startswith("//") or scheme in {"http", "https", "ftp", "ws", "wss"}:
                remote.append(f"{page.relative_to(book.html)}: <{tag}> {url}")
    assert not remote, "pages load assets from the network:\n" + "\n".join(remote)


def test_math_pages_load_local_mathjax(book: Build) -> None:
    _require_built(book)
    math_pages = [p for p in _pages(book) if has_math(p.read_text(encoding="utf8"))]
    assert math_pages, "no page contains math"
    in_subfolder = [p for p in math_pages if len(p.relative_to(book.html).parts) > 1]
    assert in_subfolder, "no page in a subfolder contains math"
    for page in math_pages:
        scripts = [url for tag, url in loaded_urls(page) if tag == "script" and "mathjax" in url.lower()]
        assert scripts, f"{page.relative_to(book.html)} has math but loads no MathJax"
        for url in scripts:
            assert not urlsplit(url).scheme and not url.startswith("/"), f"MathJax URL not relative: {url}"
            target = resolve_local(book.html, page, url)
            assert target.is_file(), f"{page.relative_to(book.html)}: {url} -> {target} does not exist"
            assert target.name == "tex-chtml.js"
    fonts = book.html / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").is_file(), "MathJax fonts were not copied"


def test_bibliography_renders_entries(book: Build) -> None:
    _require_built(book)
    html = (book.html / "book" / "references.html").read_text(encoding="utf8")
    entries = re.findall(r'<div class="citation" id="[^"]+" role="doc-biblioentry">', html)
    assert entries, "the bibliography page has no entries"
    assert "Kingma" in html and "Auto-encoding variational Bayes" in html


def test_labelled_equations_are_numbered(book: Build) -> None:
    _require_built(book)
    checked = 0
    for doc, numbered in toc_files():
        labels = EQ_LABEL.findall(markdown_text(source_of(doc)))
        if not labels:
            continue
        html = (book.html / f"{doc}.html").read_text(encoding="utf8")
        section = SECTION_NUMBER.search(html)
        for label in labels:
            anchor = f'id="{make_id("equation-" + label)}"'
            start = html.find(anchor)
            assert start >= 0, f"{doc}: equation {label} not rendered"
            number = EQNO.search(html, start)
            assert number and number.start() - start < 400, f"{doc}: equation {label} has no number"
            if numbered:
                assert section, f"{doc}: numbered chapter without a section number in its title"
                chapter = section.group(1)
                assert re.fullmatch(rf"{re.escape(chapter)}\.\d+", number.group(1)), (
                    f"{doc}: equation {label} is numbered ({number.group(1)}), "
                    f"expected ({chapter}.k) in chapter {chapter}"
                )
            checked += 1
    assert checked, "no labelled equation found in any page of the toc"
