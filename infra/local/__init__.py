"""The local stack: the servers a laptop runs (S3, Kafka, Milvus) and the app processes on them."""
