"""lookalike core: the pieces every stage shares (settings, events, store, index, embedder)."""

__version__ = "0.1.0"
