"""``lookalike bench``: one module per phase, wired by ``run.run_bench``.

(a) ``floor``: the model's own speed; (b) ``ingest`` and (c) ``freshness``: through a private stack
with the bench's own ``workers``; (d) ``query``: search latency; (e) ``seed``: the tutorial's
one-at-a-time loop; (f) ``memory``: the workers' peak RSS. ``stats`` is the pure arithmetic and
the table; ``options``, ``images`` and ``photos`` (12 MP copies) are the inputs; ``cli`` is what the
subcommand runs (its arguments are in ``infra.commands.bench``). ``scale`` is ``--scale N``, with
``server_probe`` for the Milvus process. Probes run on their own: ``runtime`` (model-only speed per
runtime), ``backfill_memory`` (a backfill's peak RSS), ``peak_rss`` (the child it measures) and
``api_memory`` (the query API's peak RSS while it serves searches).
"""
