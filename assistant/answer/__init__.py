"""Answering: retrieval, follow-ups, and the two answerers (extractive and LLM)."""
