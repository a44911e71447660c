"""Named queries, shipped as `pipeline.queries`: each file one statement with a header (see README.md here)."""
