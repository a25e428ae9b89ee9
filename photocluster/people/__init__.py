"""Faces into people: thresholds, the clustering rule, the catalog's people and queries, find."""
