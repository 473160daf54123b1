"""MkDocs hooks for the rxflows site (``hooks:`` in mkdocs.yml).

``on_files`` adds the generated files, so they never go stale:

* one picture per operator, ``img/marbles/<name>.svg``, drawn from the marble
  diagram in the operator's docstring (``marble_pictures.py``), shown on the
  operators page;
* the API reference pages ``api/<slug>.md`` (``api_pages.py``): a ``::: name``
  entry for every public name, rendered by mkdocstrings from its docstring.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_pages import api_pages
from marble_pictures import operator_pictures


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    for name, svg in operator_pictures().items():
        files.append(File.generated(config, f"img/marbles/{name}.svg", content=svg))
    for path, markdown in api_pages().items():
        files.append(File.generated(config, path, content=markdown))
    return files
