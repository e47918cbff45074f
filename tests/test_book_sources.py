"""The hand-written pages of the book against what they point at, without building the book.

``book/answers.md`` answers each question of the book in a few lines that point into the chapters:
an equation label, a ``vaelib`` call, a chapter and the chapter's glued numbers. Every pointer is
checked here against its target, so that an answer cannot silently cite an equation of another
chapter, a renamed function or a number the chapter no longer stores. ``book/citing.md`` is checked
against ``CITATION.cff`` field by field (``test_citation.py`` checks the version and the date).
"""

from __future__ import annotations

import ast
import importlib
import json
import posixpath
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ANSWERS = ROOT / "book" / "answers.md"

HEADING = re.compile(r"^## (.+)$", re.MULTILINE)
DOC_ROLE = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`")
EQ_ROLE = re.compile(r"\{eq\}`([^`]+)`")
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`]*)`")
GLUE_FROM_PAGE = re.compile(r"^([^:]+)::([^:]+):(.+)$")
CODE = re.compile(r"(?<![`{}])`([^`]+)`(?!`)")
MATH = re.compile(r"\$[^$]+\$")
ROLE = re.compile(r"\{[\w:]+\}`[^`]*`")
EQ_LABEL = re.compile(r"\$\$[ \t]*\((eq-[A-Za-z0-9_.:-]+)\)[ \t]*$", re.MULTILINE)
TYPED_MEASUREMENT = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])|\b\d+(?:\.\d+)?e[-+]?\d+\b")


def sections() -> list[tuple[str, str]]:
    text = ANSWERS.read_text(encoding="utf8")
    parts = HEADING.split(text)
    return [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]


def notebook(doc: str) -> Path:
    """The notebook a {doc} target of book/answers.md names (relative to book/)."""
    return ROOT / (posixpath.normpath(posixpath.join("book", doc)) + ".ipynb")


def markdown_of(nb: Path) -> str:
    cells = json.loads(nb.read_text(encoding="utf8"))["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def glued_keys(nb: Path) -> set[str]:
    keys = set()
    for cell in json.loads(nb.read_text(encoding="utf8"))["cells"]:
        for output in cell.get("outputs", []):
            record = (output.get("metadata") or {}).get("scrapbook")
            if record:
                keys.add(record["name"])
    return keys


def resolve(dotted: str) -> object:
    """``vaelib.a.b.c`` as an object: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_answers_page_is_in_the_toc_and_linked_from_the_intro() -> None:
    toc = (ROOT / "_toc.yml").read_text(encoding="utf8")
    assert re.search(r"^\s*- file: book/answers\s*$", toc, re.MULTILINE)
    assert "{doc}`answers <answers>`" in (ROOT / "book" / "intro.md").read_text(encoding="utf8")


def test_every_question_of_the_reading_guide_has_an_answer() -> None:
    guide = (ROOT / "book" / "reading_guide.md").read_text(encoding="utf8")
    chapters = set(re.findall(r"\{doc\}`\.\./(notebooks/\d\d_\w+)`", guide))
    answered = {posixpath.normpath(posixpath.join("book", d)) for _, body in sections() for d in DOC_ROLE.findall(body)}
    assert chapters and chapters <= answered, f"chapters of the reading guide without an answer: {chapters - answered}"


@pytest.mark.parametrize("question, body", sections(), ids=[q for q, _ in sections()])
def test_answer_points_into_its_chapter(question: str, body: str) -> None:
    docs = [d for d in DOC_ROLE.findall(body) if "notebooks/" in d]
    assert docs, "the answer links no chapter"
    notebooks = {notebook(d) for d in docs}
    for nb in notebooks:
        assert nb.is_file(), f"{nb.relative_to(ROOT)} does not exist"
    # The equation: a label defined in a chapter the answer links.
    labels = EQ_ROLE.findall(body)
    assert labels, "the answer cites no equation"
    defined = {label for nb in notebooks for label in EQ_LABEL.findall(markdown_of(nb))}
    assert set(labels) <= defined, f"equations not defined in the linked chapter: {set(labels) - defined}"
    # The vaelib call: one line of Python whose vaelib names exist.
    calls = [c for c in CODE.findall(ROLE.sub("", body)) if c.startswith("vaelib.")]
    assert len(calls) == 1, f"expected one vaelib call, found {calls}"
    ast.parse(calls[0], mode="eval")
    for dotted in re.findall(r"\bvaelib(?:\.\w+)+", calls[0]):
        try:
            resolve(dotted)
        except (ImportError, AttributeError) as exc:
            pytest.fail(f"{dotted} in {calls[0]!r} does not exist: {exc}")
    # The numbers: pasted from a linked chapter, never typed.
    refs = GLUE_ROLE.findall(body)
    assert refs, "the answer gives no measured number"
    for ref in refs:
        match = GLUE_FROM_PAGE.match(ref)
        assert match, f"glue reference {ref!r} is not of the form path::key:format"
        nb = (ANSWERS.parent / match.group(1)).resolve()
        assert nb in notebooks, f"{ref!r} pastes from a chapter the answer does not link"
        assert match.group(2) in glued_keys(nb), f"{nb.name} glues no value {match.group(2)!r}"
    prose = MATH.sub("", CODE.sub("", ROLE.sub("", body)))
    typed = TYPED_MEASUREMENT.findall(prose)
    assert not typed, f"numbers typed by hand instead of pasted with glue: {typed}"
    # Short: the verdict, with the pasted numbers as about five characters each, fits in about
    # four lines of the desktop text column (some 100 characters a line).
    verdict = body.strip().split("\n\n")[0]
    shown = GLUE_ROLE.sub("0.000", verdict)
    shown = re.sub(r"\{\w+\}`(?:[^`<]*<)?([^`>]*)>?`", r"\1", shown)
    shown = MATH.sub(lambda m: re.sub(r"\\[a-zA-Z]+|[{}_^$]", "", m.group(0)), shown)
    assert len(" ".join(shown.split())) <= 420, f"the answer is longer than four lines: {verdict}"


def test_citing_page_bibtex_matches_citation_cff() -> None:
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf8"))
    page = (ROOT / "book" / "citing.md").read_text(encoding="utf8")
    block = re.search(r"```bibtex\n(.*?)```", page, re.DOTALL)
    assert block, "book/citing.md has no BibTeX block"
    fields = dict(re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", block.group(1), re.MULTILINE))
    preferred = cff["preferred-citation"]
    assert block.group(1).lstrip().startswith(f"@{preferred['type']}{{")

    def plain(text: str) -> str:
        return text.replace("{", "").replace("}", "")

    assert plain(fields["title"]) == preferred["title"] == cff["title"]
    authors = [a.get("name") or f"{a['given-names']} {a['family-names']}" for a in preferred["authors"]]
    assert [plain(a).strip() for a in fields["author"].split(" and ")] == authors
    assert fields["year"] == str(preferred["year"])
    assert fields["edition"] == cff["version"]
    assert cff["version"] in fields["note"]
