"""Infrastructure: the local stack (SeaweedFS, Tansu, Milvus Lite) and the production compose files."""
