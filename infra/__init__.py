"""Infrastructure: the local stack (moto, Tansu, Milvus Lite) and the production compose files."""
