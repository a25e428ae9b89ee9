"""Photos in: walk folders, decode, detect and encode faces, write them to the catalog (scan)."""
