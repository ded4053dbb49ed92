"""Embedding workers: Kafka reader -> fetch/decode mapper -> embedder -> Milvus writer, wired by a runner."""
