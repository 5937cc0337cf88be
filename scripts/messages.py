#!/usr/bin/env python3
"""Update Omniman's translation catalogue, then compile it.

    python3 scripts/messages.py [--check]

Runs Django's ``makemessages`` (GNU gettext: Debian's ``gettext`` package) over
the package and the templates into ``omniman/locale/<lang>/LC_MESSAGES/django.po``,
then compiles each ``.po`` to its ``.mo`` with Babel (pure Python). Translate
the new entries (no fuzzy, no empty msgstr; tests/integration/test_translations.py
checks), run it again to compile, and commit both files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCALE_DIR = REPO / "omniman" / "locale"
LANGUAGES = ["pt_BR"]
# Only what ships (the package, the templates, the static scripts): never tests, docs or the venv.
IGNORE = [".venv/*", "tests/*", "docs/*", "benchmarks/*", "scripts/*", "staticfiles/*", "build/*", "*.egg-info/*"]


def make_messages(root: Path, locale_dir: Path, languages: list[str] = LANGUAGES) -> None:
    """``makemessages`` over ``root`` (the repository or a copy of it), writing into ``locale_dir``."""
    from django.core.management import call_command
    from django.test.utils import override_settings

    previous = os.getcwd()
    os.chdir(root)
    try:
        with override_settings(LOCALE_PATHS=[str(locale_dir)]):
            call_command(
                "makemessages", locale=languages, domain="django", ignore_patterns=IGNORE,
                add_location="file", no_obsolete=True, verbosity=0,
            )
    finally:
        os.chdir(previous)


def compile_catalogue(po_path: Path) -> bytes:
    """The ``.mo`` bytes of a ``.po`` (Babel's pure-Python compiler; fuzzy entries left out)."""
    from io import BytesIO

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po_path.open("rb") as handle:
        catalog = read_po(handle)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def compile_all(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    written = []
    for po_path in sorted(locale_dir.glob("*/LC_MESSAGES/django.po")):
        mo_path = po_path.with_suffix(".mo")
        mo_path.write_bytes(compile_catalogue(po_path))
        written.append(mo_path)
    return written


def main() -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    make_messages(REPO, LOCALE_DIR)
    for path in compile_all():
        print(f"compiled {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
