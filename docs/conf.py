"""Sphinx configuration for the Omniman documentation.

Build with ``.venv/bin/sphinx-build -W -b html docs docs/_build/html``. No
extension and no network: the pages are plain reStructuredText, and every
``.. code-block:: python`` block without ``:class: no-run`` is executed by
``tests/integration/test_docs.py``.
"""

import re
from pathlib import Path

_init = (Path(__file__).resolve().parent.parent / "omniman" / "__init__.py").read_text()
_version = re.search(r'__version__\s*=\s*"([^"]+)"', _init)

project = "Omniman"
author = "Omniman engineers"
copyright = "2026, Omniman engineers"
release = _version.group(1) if _version else "0.0.0"
version = ".".join(release.split(".")[:2])

extensions = []
exclude_patterns = ["_build"]
templates_path = []

root_doc = "index"
language = "en"
pygments_style = "sphinx"

html_theme = "alabaster"
html_title = "Omniman"
html_static_path = []
html_theme_options = {
    "description": "A headless omnichannel order hub for Django.",
    "fixed_sidebar": True,
    "show_relbars": True,
}
