"""Local Sphinx extension of the vaelib book.

1. Offline MathJax. The ``sphinx-mathjax-offline`` distribution ships MathJax
   3.2.2 under ``sphinx-mathjax-offline/static/mathjax``. Its own Sphinx
   extension is not used. This module locates the files with
   :mod:`importlib.metadata` and adds their parent folder to
   ``html_extra_path``: Sphinx copies its contents verbatim to the output
   root, so MathJax lands in ``<html>/mathjax/``. Nothing is put in a
   ``_static`` folder: Jupyter Book would inject every ``.js`` file found in
   the book's ``_static`` into every page.

   ``mathjax_path`` is set to ``../mathjax/tex-chtml.js``. Sphinx prefixes a
   relative script path with ``_static/`` and then renders it with
   ``pathto(..., resource=True)``, which prepends the page's way back to the
   output root. The result is ``_static/../mathjax/tex-chtml.js`` from a
   top-level page and ``../_static/../mathjax/tex-chtml.js`` from
   ``notebooks/01_elbo.html``; both resolve to ``<html>/mathjax/tex-chtml.js``.
   MathJax then finds its fonts and extensions relative to that script.

2. No Thebe/Binder hooks. Jupyter Book always loads ``sphinx_thebe``, which
   adds to every page a script naming a CDN copy of Thebe, ``sphinx-thebe.js``
   and a Binder configuration block, even with ``launch_buttons.thebe: false``.
   None of it is reachable without a launch button, and this extension removes
   it from the pages, so that the HTML names no external service.

3. Prose first lines of property docstrings. Napoleon reads the first line of
   a property or attribute docstring as ``type: description`` when it holds a
   colon, so the docstring ``sigmoid(l) sigmoid(-l): accurate ...`` would be turned
   into a cross-reference to a class ``sigmoid(l) sigmoid(-l)``. vaelib takes
   types from annotations, never from that syntax, so such docstrings get an
   empty reST comment (``..``) as first line before Napoleon sees them; the
   comment renders as nothing.

4. Equation references in docstrings. vaelib's docstrings cite the book's
   equations by label, ``Eq. (eq-gauss-nll)``, so that they read well in a
   terminal. On the API page every ``(eq-...)`` becomes the ``eq`` role, which
   renders the equation's number, "(2.3)", as a link to it. A label that no
   page defines is then a build warning, and the nitpicky build fails on it.

5. Author-year labels in the bibliography. In-text citations are author-year
   (``bibtex_reference_style = author_year``); the ``vaelib`` pybtex style
   labels the bibliography entries in the same form, "Kingma & Welling 2014",
   instead of alpha labels such as "[KW14]", and sorts them by author, year
   and title.

6. Version and build date on every page. The footer of every page names the
   version of the book and of the library (``vaelib.__version__``, which
   ``tests/test_citation.py`` keeps equal to ``pyproject.toml`` and
   ``CITATION.cff``), the date of the build and a link to the how-to-cite
   page. Version and date are added to ``html_context``: a change of either
   changes the configuration, and Sphinx then rewrites every page, not only
   the changed ones. The line itself goes into the theme's ``extra_footer``
   slot page by page, so that the link is relative to the page. The date
   honours ``SOURCE_DATE_EPOCH``, through Sphinx's own date formatting, for
   reproducible builds. Sphinx's ``version`` and ``release`` are set to the
   same version when ``_config.yml`` leaves them empty.

7. Display equations on phones. ``static/vaelib_book.css`` sets display
   mathematics at 76% of its size in windows narrower than 600 px, where the
   column beside an equation number is about 300 px wide.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections import Counter
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.util.i18n import format_date

MATHJAX_DIST = "sphinx-mathjax-offline"
MATHJAX_ENTRY = "mathjax/tex-chtml.js"
# Relative to the output's _static/, which Sphinx prepends (see module docstring).
MATHJAX_PATH = "../" + MATHJAX_ENTRY


def mathjax_static_dir() -> Path:
    """Return the folder that contains ``mathjax/tex-chtml.js``."""
    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution(MATHJAX_DIST)
        candidates.append(Path(str(dist.locate_file("sphinx-mathjax-offline/static"))))
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        spec = importlib.util.find_spec(MATHJAX_DIST)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "static")
    for folder in candidates:
        if (folder / MATHJAX_ENTRY).is_file():
            return folder.resolve()
    raise ExtensionError(
        f"{MATHJAX_ENTRY} not found; install the '{MATHJAX_DIST}' package "
        "(it is part of the book extra of vaelib)."
    )


def _configure_mathjax(app: Sphinx, config: Config) -> None:
    folder = str(mathjax_static_dir())
    extra = list(config.html_extra_path or [])
    if folder not in extra:
        extra.append(folder)
    config.html_extra_path = extra
    config.mathjax_path = MATHJAX_PATH


EDITION_CLASS = "vaelib-edition"
CITING_DOC = "book/citing"


def book_version() -> str:
    """The version of the book: the installed ``vaelib``'s ``__version__``."""
    try:
        import vaelib
    except ImportError as exc:  # autodoc needs vaelib anyway
        raise ExtensionError(f"vaelib cannot be imported, so the book has no version: {exc}") from exc
    return str(vaelib.__version__)


def _configure_version(app: Sphinx, config: Config) -> None:
    version = book_version()
    if not config.version:
        config.version = version
    if not config.release:
        config.release = version
    # In html_context, so that a new version or date makes Sphinx rewrite every page.
    context = dict(config.html_context or {})
    context["vaelib_version"] = version
    context["vaelib_build_date"] = format_date("%Y-%m-%d", language=config.language or "en")
    config.html_context = context


def edition_html(version: str, date: str, citing_url: str | None) -> str:
    """The footer line that every page carries."""
    line = (
        f'Version <span class="vaelib-version">{version}</span> of the book and of '
        f'<code>vaelib</code>, built on <time datetime="{date}">{date}</time>.'
    )
    if citing_url:
        line += f' <a href="{citing_url}">How to cite it</a>.'
    return f'<p class="{EDITION_CLASS}">{line}</p>'


def _add_edition_footer(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    version, date = context.get("vaelib_version"), context.get("vaelib_build_date")
    if not version or not date:
        return
    pathto = context.get("pathto")
    linked = pathto and pagename != CITING_DOC and CITING_DOC in app.env.found_docs
    citing = pathto(CITING_DOC) if linked else None
    existing = context.get("theme_extra_footer") or ""
    context["theme_extra_footer"] = existing + edition_html(version, date, citing)


def _strip_thebe_config(app: Sphinx, doctree: Any, docname: str) -> None:
    from docutils import nodes

    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        if "text/x-thebe-config" in text or text.strip().startswith("<script>kernelName ="):
            node.parent.remove(node)


def _strip_thebe_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    files = context.get("script_files")
    if not isinstance(files, list):
        return

    def is_thebe(js: Any) -> bool:
        name = str(getattr(js, "filename", js) or "")
        body = str((getattr(js, "attributes", None) or {}).get("body", "") or "")
        return name.endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body

    # In place: Sphinx resets this list before the next page.
    files[:] = [js for js in files if not is_thebe(js)]


def _protect_attribute_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what in {"attribute", "property", "data"} and lines and ":" in lines[0]:
        lines[0:0] = ["..", ""]


EQ_REFERENCE = re.compile(r"\((eq-[a-z0-9][a-z0-9-]*)\)")


def _link_equations(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    lines[:] = [EQ_REFERENCE.sub(r":eq:`\1`", line) for line in lines]


def _register_pybtex_style() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.richtext import Text
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle
    from pybtex.style.sorting.author_year_title import SortingStyle

    def surname(person: Any) -> str:
        return Text(*person.rich_prelast_names, *person.rich_last_names).render_as("text").strip()

    class AuthorYearLabelStyle(BaseLabelStyle):
        def format_label(self, entry: Any) -> str:
            persons = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [surname(p) for p in persons]
            has_others = bool(names) and names[-1].lower() == "others"
            if has_others:
                names = names[:-1]
            if not names:
                who = entry.fields.get("organization", entry.key)
            elif len(names) == 1:
                who = names[0] + (" et al." if has_others else "")
            elif len(names) == 2 and not has_others:
                who = f"{names[0]} & {names[1]}"
            else:
                who = f"{names[0]} et al."
            return f"{who} {entry.fields.get('year', 'n.d.')}"

        def format_labels(self, sorted_entries: Any) -> Any:
            labels = [self.format_label(e) for e in sorted_entries]
            total, seen = Counter(labels), Counter()
            for label in labels:
                if total[label] == 1:
                    yield label
                else:
                    yield label + chr(ord("a") + seen[label])
                    seen[label] += 1

    class VaelibStyle(UnsrtStyle):
        default_label_style = AuthorYearLabelStyle
        default_sorting_style = SortingStyle

    register_plugin("pybtex.style.labels", "vaelib_author_year", AuthorYearLabelStyle, force=True)
    register_plugin("pybtex.style.formatting", "vaelib", VaelibStyle, force=True)


STATIC_DIR = Path(__file__).resolve().parent / "static"
CSS_FILE = "vaelib_book.css"


def _configure_static(app: Sphinx, config: Config) -> None:
    """Serve book/_ext/static (one CSS file, no JavaScript) from _static."""
    config.html_static_path = [*config.html_static_path, str(STATIC_DIR)]


def setup(app: Sphinx) -> dict[str, Any]:
    _register_pybtex_style()
    app.connect("config-inited", _configure_static, priority=800)
    app.add_css_file(CSS_FILE)
    # Priority > 500 so that this runs after Jupyter Book has merged _config.yml.
    app.connect("config-inited", _configure_mathjax, priority=800)
    app.connect("config-inited", _configure_version, priority=800)
    # Before sphinx.ext.napoleon's handler (default priority 500).
    app.connect("autodoc-process-docstring", _protect_attribute_docstring, priority=400)
    app.connect("autodoc-process-docstring", _link_equations, priority=450)
    # After sphinx_thebe's own handlers (default priority 500).
    app.connect("doctree-resolved", _strip_thebe_config, priority=900)
    app.connect("html-page-context", _strip_thebe_scripts, priority=900)
    app.connect("html-page-context", _add_edition_footer, priority=900)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
