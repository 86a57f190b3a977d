"""Where the shared benchmark data lives (the seed article, MultiHop-RAG, RGB)."""

from __future__ import annotations

import os
from pathlib import Path

# Beside the checkout unless NEWSDESK_SHARED_DATA says where.
SHARED_DATA = Path(os.environ.get("NEWSDESK_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")
