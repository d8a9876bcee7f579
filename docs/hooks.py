"""MkDocs hooks (mkdocs.yml `hooks:`): the home page is README.md, and the snippet markers are
taken out before a page is rendered.

README.md is the repository's front page and the site's: its links into `docs/` are made relative
to the site here. `<!-- run: NAME -->` and `<!-- not run: REASON -->` before a code block say which
test runs it (tests/test_docs.py); Markdown would end a list at such a comment, so they go.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r"^[ \t]*<!-- (?:not )?run: .*? -->[ \t]*\n", re.M)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri == "index.md":
        markdown = README.read_text(encoding="utf-8").replace("](docs/", "](")
    return MARKER.sub("", markdown)
