"""``lookalike bench``: one module per phase, wired by ``run.run_bench``.

(a) ``floor``: the model's own speed; (b) ``ingest`` and (c) ``freshness``: through a private stack
with the bench's own ``workers``; (d) ``query``: search latency; (e) ``seed``: the tutorial's
one-at-a-time loop; (f) ``memory``: the workers' peak RSS. ``stats`` is the pure arithmetic and
the table; ``options`` and ``images`` are the inputs; ``cli`` is the subcommand.
"""
