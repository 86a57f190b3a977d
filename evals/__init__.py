"""Yardsticks, not product: `newsdesk-eval`, the refusal calibration and their metrics."""
