"""Nearest faces: the face index kept beside the catalog, and the faiss k-NN/HNSW helpers."""
