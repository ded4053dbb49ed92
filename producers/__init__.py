"""Producers: the S3-notification -> Kafka bridge and the bulk uploader."""
