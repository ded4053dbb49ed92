"""Changing the model without downtime: ``lookalike reindex`` (``build``) and its subcommand (``cli``)."""
