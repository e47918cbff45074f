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

2. Author-year labels in the bibliography. In-text citations already use
   ``bibtex_reference_style = author_year``; the ``vaelib`` pybtex style makes
   the bibliography list show the same "Kingma & Welling 2014" labels instead
   of alpha labels such as "[KW14]", sorted by author, year and title.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections import Counter
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError

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
    spec = importlib.util.find_spec(MATHJAX_DIST)
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


def setup(app: Sphinx) -> dict[str, Any]:
    _register_pybtex_style()
    # Priority > 500 so that this runs after Jupyter Book has merged _config.yml.
    app.connect("config-inited", _configure_mathjax, priority=800)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
