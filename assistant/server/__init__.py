"""The HTTP app over `Assistant`, one router per concern (the Gradio chat, ui.py, mounts on it;
the top-level `wiring.py` wires the ingest pipeline in)."""
