"""How good the clustering is: metrics on labelled folders (eval) and the parameter grid (tune)."""
