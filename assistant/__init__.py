"""newsdesk's assistant: settings, embeddings, the Chroma store, retrieval and cited answers.

The public API is `Assistant` (ask / stream / health / articles) and the `Answer` shape.
"""

from typing import Any

__all__ = ["Answer", "Assistant", "Citation", "Message", "Settings", "get_settings"]


def __getattr__(name: str) -> Any:
    # Imported lazily so `assistant.settings` does not pull in torch and Chroma.
    if name == "Assistant":
        from assistant.service import Assistant

        return Assistant
    if name in ("Answer", "Citation", "Message"):
        from assistant import types as models

        return getattr(models, name)
    if name in ("Settings", "get_settings"):
        from assistant import settings

        return getattr(settings, name)
    raise AttributeError(name)
