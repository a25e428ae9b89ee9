"""Out of the catalog: per-person folders, the JSON report, XMP face regions."""
