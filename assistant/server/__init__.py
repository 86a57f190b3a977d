"""The HTTP app over `Assistant` (the Gradio chat, ui.py, mounts on it)."""
