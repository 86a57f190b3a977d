"""Indexing: the embedding model, the Chroma store and the keyword index beside it."""
