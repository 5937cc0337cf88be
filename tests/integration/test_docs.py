"""The documentation builds cleanly and its Python examples really run.

1. ``sphinx-build -W --keep-going -b html docs <tmp>`` exits 0 (no warning, no
   missing document).
2. Every ``.. code-block:: python`` block of every page under ``docs/`` is
   executed, page by page, in order, in one namespace per page, against a fresh
   test database, unless the block has ``:class: no-run`` (settings snippets
   and fragments that are not meant to run standalone).

The examples document the kernel alone: each page starts with an empty
extension registry (whatever apps registered in ``ready()`` is set aside and
restored afterwards), so a page registers the modifiers, validators, handlers
and resolvers it talks about.

A page that walks through the installed project instead (the tutorial runs
``seed_demo`` and the contrib apps' handlers) says so with the comment line
``.. docs-test: installed-registry``: it starts with the registrations the
apps made in ``ready()``, as ``manage.py shell`` does.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from omniman import registry

# The pages document the whole project: their examples run with every contrib app installed.
pytestmark = pytest.mark.contrib(
    "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock", "omniman.contrib.payment",
    "omniman.contrib.notifications", "omniman.contrib.refs", "omniman.contrib.demo",
)

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\.[ \t]+code-block::[ \t]*(?P<language>\S*)[ \t]*$")
OPTION = re.compile(r"^:(?P<name>[A-Za-z0-9_-]+):(?:[ \t]+(?P<value>.*))?$")
INSTALLED_REGISTRY = re.compile(r"^\.\.[ \t]+docs-test:[ \t]+installed-registry[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    number: int  # 1-based, counting the page's python blocks (run or not)
    line: int  # 1-based line of the first line of code in the .rst file
    source: str
    runs: bool


def _indent_width(line: str) -> int:
    return len(line.expandtabs()) - len(line.expandtabs().lstrip())


def python_blocks(path: Path) -> list[Block]:
    """The ``.. code-block:: python`` blocks of an .rst page, with their options."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        match = DIRECTIVE.match(lines[index])
        index += 1
        if not match or match["language"].lower() not in {"python", "python3", "py"}:
            continue
        base = _indent_width(lines[index - 1])
        options: dict[str, str] = {}
        # Options: lines indented under the directive, up to the first blank line.
        while index < len(lines) and lines[index].strip() and _indent_width(lines[index]) > base:
            option = OPTION.match(lines[index].strip())
            if not option:
                break
            options[option["name"]] = (option["value"] or "").strip()
            index += 1
        # Body: every following line that is blank or indented under the directive.
        start = index
        while index < len(lines) and (not lines[index].strip() or _indent_width(lines[index]) > base):
            index += 1
        body = lines[start:index]
        while body and not body[0].strip():
            body.pop(0)
            start += 1
        while body and not body[-1].strip():
            body.pop()
        classes = options.get("class", "").split()
        blocks.append(
            Block(
                number=len(blocks) + 1,
                line=start + 1,
                source=textwrap.dedent("\n".join(body)),
                runs="no-run" not in classes and bool(body),
            )
        )
    return blocks


def uses_installed_registry(path: Path) -> bool:
    """The page asks to run with the apps' registrations (``.. docs-test: installed-registry``)."""
    return bool(INSTALLED_REGISTRY.search(path.read_text(encoding="utf-8")))


def pages_with_examples() -> list[Path]:
    pages = sorted(path for path in DOCS.rglob("*.rst") if "_build" not in path.relative_to(DOCS).parts)
    return [page for page in pages if any(block.runs for block in python_blocks(page))]


def test_sphinx_build_is_clean(tmp_path):
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(tmp_path / "html")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        print(result.stdout)
        print(result.stderr, file=sys.stderr)
    assert result.returncode == 0, f"sphinx-build exited {result.returncode}:\n{result.stderr}"


def test_the_parser_reads_options_and_bodies(tmp_path):
    page = tmp_path / "page.rst"
    page.write_text(
        textwrap.dedent(
            """\
            Title
            =====

            .. code-block:: python

               x = 1

            .. code-block:: python
               :caption: settings.py
               :class: no-run

               DEBUG = True

            .. code-block:: bash

               echo no

            - A list item with a nested block:

              .. code-block:: python
                 :caption: nested

                 y = x + 1

                 assert y == 2
            Back to the text.
            """
        )
    )
    blocks = python_blocks(page)
    assert [(b.number, b.line, b.runs) for b in blocks] == [(1, 6, True), (2, 12, False), (3, 23, True)]
    assert blocks[0].source == "x = 1"
    assert blocks[2].source == "y = x + 1\n\nassert y == 2"


def test_the_installed_registry_marker(tmp_path):
    marked, plain = tmp_path / "marked.rst", tmp_path / "plain.rst"
    marked.write_text("Title\n=====\n\n.. docs-test: installed-registry\n\nText.\n")
    plain.write_text("Title\n=====\n\nMentions ``.. docs-test: installed-registry`` in a sentence.\n")
    assert uses_installed_registry(marked) and not uses_installed_registry(plain)


@pytest.fixture
def bare_registry(request):
    """A clean registry for one page; the previous registrations come back afterwards."""
    try:
        request.getfixturevalue("registry_state")  # tests/conftest.py's snapshot/restore, when it exists
    except pytest.FixtureLookupError:
        pass
    saved = registry.snapshot()
    registry.clear()
    try:
        yield saved
    finally:
        registry.restore(saved)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("page", pages_with_examples(), ids=lambda page: page.relative_to(DOCS).as_posix())
def test_python_examples_run(page: Path, bare_registry):
    relative = page.relative_to(REPO).as_posix()
    if uses_installed_registry(page):
        registry.restore(bare_registry)  # the apps' registrations, as ready() left them
    namespace: dict = {"__name__": f"docs_example_{page.stem.replace('-', '_')}"}
    for block in python_blocks(page):
        if not block.runs:
            continue
        # Pad with newlines so tracebacks point at the line of the .rst file.
        code = compile("\n" * (block.line - 1) + block.source, relative, "exec")
        failure = None
        try:
            exec(code, namespace)
        except Exception:
            failure = traceback.format_exc()
        if failure is not None:
            pytest.fail(
                f"{relative}, python block {block.number} (line {block.line}) failed:\n"
                f"{failure}\n--- block {block.number} ---\n{block.source}",
                pytrace=False,
            )
