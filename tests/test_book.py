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


# --------------------------------------------------------------------------------------------
# The pages in a headless browser
#
# A page is opened in Chromium at a desktop width, MathJax is left to typeset it, and what a reader
# sees is measured: display equations wider than the text column (the theme then gives them a
# scroll bar) and figures without a caption. Playwright and a Chromium are optional: the tests skip,
# saying why, where either is missing, and nothing is installed for them.

BROWSER_WIDTH = 1400
SYSTEM_CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser")

_WAIT_FOR_PAGE = """
async () => {
  if (document.querySelector('script[src*="mathjax"]')) {
    const t0 = Date.now();
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
      if (Date.now() - t0 > 30000) return 'MathJax did not start within 30 s';
      await new Promise(r => setTimeout(r, 50));
    }
    try { await MathJax.startup.promise; } catch (e) { return 'MathJax failed: ' + e; }
  }
  if (document.fonts) await document.fonts.ready;
  await Promise.all(Array.from(document.images).filter(i => !i.complete)
    .map(i => new Promise(r => { i.onload = i.onerror = r; })));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return 'ok';
}
"""

# In this theme a display equation is <div class="math"> holding the number and an
# <mjx-container display="true"> with overflow:auto; it is too wide when that container scrolls.
_MEASURE_PAGE = """
() => {
  const article = document.querySelector('article.bd-article') || document.body;
  const box = article.getBoundingClientRect();
  const out = {equations: 0, wide: [], errors: 0, images: []};
  const items = (window.MathJax && MathJax.startup && MathJax.startup.document)
    ? Array.from(MathJax.startup.document.math) : [];
  for (const item of items) {
    const root = item.typesetRoot;
    if (!item.display || !root || !root.isConnected) continue;
    out.equations += 1;
    const rect = root.getBoundingClientRect();
    if (root.scrollWidth > root.clientWidth + 1 || rect.right > box.right + 1) {
      const div = root.closest('div.math');
      const eqno = div && div.querySelector('.eqno');
      const id = (div && div.id) || '';
      out.wide.push({
        label: id.startsWith('equation-') ? id.slice(9) : '',
        number: eqno ? eqno.textContent.replace(/[^0-9.()]/g, '') : '',
        tex: String(item.math || '').replace(/\\s+/g, ' ').trim().slice(0, 70),
        content: Math.round(root.scrollWidth), column: Math.round(root.clientWidth),
        output: !!root.closest('.cell_output, .output'),
      });
    }
  }
  out.errors = article.querySelectorAll('mjx-merror').length;
  for (const img of article.querySelectorAll('img')) {
    const fig = img.closest('figure');
    const cap = fig && fig.querySelector('figcaption');
    let section = '';
    const sec = img.closest('section');
    const h = sec && sec.querySelector('h1, h2, h3, h4');
    if (h) section = h.textContent.replace(/[#¶]/g, '').trim().slice(0, 60);
    out.images.push({
      src: (img.getAttribute('src') || '').split('/').pop().slice(0, 16),
      figure: fig ? (fig.id || '(no id)') : '',
      caption: cap ? cap.textContent.replace(/\\s+/g, ' ').trim() : '',
      numbered: !!(cap && cap.querySelector('.caption-number')),
      output: !!img.closest('.cell_output, .output'),
      section: section,
    });
  }
  return out;
}
"""


def _chromium_executable(playwright: object) -> str | None:
    for name in SYSTEM_CHROMIUM:
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    try:
        own = playwright.chromium.executable_path  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001  (no browser downloaded for this playwright)
        return None
    return own if own and os.path.isfile(own) else None


@pytest.fixture(scope="module")
def rendered(book: Build) -> dict[str, dict]:
    """Every page of the toc, measured once in headless Chromium at BROWSER_WIDTH px."""
    _require_built(book)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(
            "headless-browser check of the built book skipped: the Python package 'playwright' is "
            "not installed (it is not a dependency of vaelib; it uses a system Chromium if one is found)"
        )
    results: dict[str, dict] = {}
    with sync_playwright() as pw:
        executable = _chromium_executable(pw)
        if executable is None:
            pytest.skip(
                "headless-browser check of the built book skipped: no Chromium found (looked for "
                f"{', '.join(SYSTEM_CHROMIUM)} and for playwright's own browser)"
            )
        try:
            browser = pw.chromium.launch(executable_path=executable, args=["--disable-gpu"])
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"headless-browser check of the built book skipped: {executable} did not start: {exc}")
        try:
            page = browser.new_page(viewport={"width": BROWSER_WIDTH, "height": 900})
            for doc, numbered in toc_files():
                path = book.html / f"{doc}.html"
                page.goto(path.as_uri(), wait_until="load", timeout=60_000)
                status = page.evaluate(_WAIT_FOR_PAGE)
                data = page.evaluate(_MEASURE_PAGE)
                data.update(status=status, chapter=numbered)
                results[doc] = data
        finally:
            browser.close()
    return results


def _equation_name(eq: dict) -> str:
    name = " ".join(x for x in (eq["number"], eq["label"]) if x) or "unnumbered"
    return name + (", in a cell output" if eq["output"] else "")


def test_pages_render_in_chromium(rendered: dict[str, dict]) -> None:
    problems = [f"{doc}: {d['status']}" for doc, d in rendered.items() if d["status"] != "ok"]
    problems += [f"{doc}: {d['errors']} TeX error(s) rendered by MathJax" for doc, d in rendered.items() if d["errors"]]
    assert not problems, "pages that did not render:\n" + "\n".join(problems)
    assert sum(d["equations"] for d in rendered.values()), "MathJax typeset no display equation in any page"


def test_display_equations_fit_the_column(rendered: dict[str, dict]) -> None:
    wide = [
        f"{doc}: ({_equation_name(eq)}) {eq['content']} px in a {eq['column']} px column: {eq['tex']}"
        for doc, d in rendered.items()
        for eq in d["wide"]
    ]
    assert not wide, (
        f"{len(wide)} display equation(s) wider than the text column at {BROWSER_WIDTH} px "
        "(break them with aligned or split):\n" + "\n".join(wide)
    )


def test_chapter_images_are_captioned_numbered_figures(rendered: dict[str, dict]) -> None:
    bad = []
    for doc, d in rendered.items():
        if not d["chapter"]:
            continue
        for img in d["images"]:
            if not img["figure"]:
                why = "not in a figure"
            elif not img["caption"]:
                why = f"figure {img['figure']} has no caption"
            elif not img["numbered"]:
                why = f"figure {img['figure']} is not numbered"
            else:
                continue
            kind = "output image" if img["output"] else "image"
            bad.append(f"{doc}: {kind} {img['src']}... in section '{img['section']}': {why}")
    assert not bad, f"{len(bad)} chapter image(s) without a numbered caption:\n" + "\n".join(bad)


# --------------------------------------------------------------------------------------------
# Version, build date and the answers page


def _reader_pages(book: Build) -> list[Path]:
    """The HTML pages a reader opens: not the theme's template fragments, not redirect stubs."""
    pages = []
    for page in _pages(book):
        if "_static" in page.relative_to(book.html).parts:
            continue
        if not re.search(r"<html\b", page.read_text(encoding="utf8")[:2000], re.IGNORECASE):
            continue  # e.g. index.html, a <meta http-equiv="Refresh"> to the root document
        pages.append(page)
    return pages


EDITION = re.compile(r'<p class="vaelib-edition">(.*?)</p>', re.DOTALL)


def test_every_page_shows_the_version_and_build_date(book: Build) -> None:
    _require_built(book)
    import vaelib

    pages = _reader_pages(book)
    assert len(pages) >= len(toc_files())
    missing = []
    for page in pages:
        html = page.read_text(encoding="utf8")
        line = EDITION.search(html)
        rel = page.relative_to(book.html).as_posix()
        if line is None:
            missing.append(f"{rel}: no version line in the footer")
        elif f'<span class="vaelib-version">{vaelib.__version__}</span>' not in line.group(1):
            missing.append(f"{rel}: footer does not name version {vaelib.__version__}: {line.group(1)}")
        elif not re.search(r'<time datetime="\d{4}-\d{2}-\d{2}">', line.group(1)):
            missing.append(f"{rel}: footer has no build date: {line.group(1)}")
        elif rel != "book/citing.html" and not re.search(r'href="[^"]*citing\.html"', line.group(1)):
            missing.append(f"{rel}: footer does not link the how-to-cite page")
    assert not missing, "\n".join(missing)


GLUE_FROM_PAGE = re.compile(r"\{glue:text\}`([^`:]+)::([^`:]+):([^`]+)`")


def stored_glue(notebook: Path) -> dict[str, str]:
    """The text/plain of every value a notebook glued, as stored in its outputs."""
    values: dict[str, str] = {}
    for cell in json.loads(notebook.read_text(encoding="utf8")).get("cells", []):
        for output in cell.get("outputs", []):
            record = (output.get("metadata") or {}).get("scrapbook")
            if record:
                text = output.get("data", {}).get(record["mime_prefix"] + "text/plain")
                if text is not None:
                    values[record["name"]] = "".join(text) if isinstance(text, list) else text
    return values


def test_answers_page_shows_the_chapters_values(book: Build) -> None:
    """Every number of book/answers.md is pasted from a chapter; the page shows the stored value."""
    _require_built(book)
    from myst_nb.core.variables import format_plain_text

    source = ROOT / "book" / "answers.md"
    refs = GLUE_FROM_PAGE.findall(source.read_text(encoding="utf8"))
    assert refs, "book/answers.md pastes no value from a chapter"
    html = (book.html / "book" / "answers.html").read_text(encoding="utf8")
    pasted = re.findall(r'<span class="pasted-text">([^<]*)</span>', html)
    expected = []
    for rel, key, fmt in refs:
        values = stored_glue((source.parent / rel).resolve())
        assert key in values, f"{rel} glues no value {key!r}"
        expected.append(format_plain_text(values[key], fmt))
    assert pasted == expected, f"answers.html shows {pasted}, the chapters' stored values are {expected}"
