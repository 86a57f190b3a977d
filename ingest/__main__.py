"""`python -m ingest PATH...`: same as `newsdesk-ingest`."""

import sys

from ingest.cli import main

sys.exit(main())
