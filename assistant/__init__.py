"""newsdesk's assistant: settings, embeddings, the Chroma store, retrieval and cited answers.

The public API is `Assistant` (ask / stream / health / articles / sources), the `Answer`
shape and the `Filters` a question can carry.
"""

from typing import Any

__all__ = ["Answer", "Assistant", "Citation", "Filters", "Message", "Settings", "get_settings"]


def __getattr__(name: str) -> Any:
    # Imported lazily so `assistant.settings` does not pull in torch and Chroma.
    if name == "Assistant":
        from assistant.service import Assistant

        return Assistant
    if name in ("Answer", "Citation", "Filters", "Message"):
        from assistant import types as models

        return getattr(models, name)
    if name in ("Settings", "get_settings"):
        from assistant import settings

        return getattr(settings, name)
    raise AttributeError(name)
