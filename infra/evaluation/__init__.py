"""``lookalike eval``: the tutorial's accuracy table for any model and dataset, end to end or in memory.

Two ways to get the ranked hits, judged by the same measures (``measures``):

* ``pipeline.run_pipeline``: upload to a bucket, notification, Kafka, worker, Milvus; queries through
  ``Searcher``, the code path of ``lookalike search``;
* ``in_memory.run_in_memory``: the same embedder and decoding, exact inner product in numpy.

``dataset`` reads the tutorial's folder layout and builds the report; ``cli`` is what the subcommand
runs (its arguments are in ``infra.commands.evaluation``). ``dupes`` measures the near-duplicate
threshold (``python -m infra.dupes_eval``).
"""
