"""``python -m rxflows``: the command line (``clip``, ``demo``)."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
