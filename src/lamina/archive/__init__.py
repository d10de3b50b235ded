"""Layer tars: compression, a hostile-input-safe streaming reader/extractor, a deterministic writer,
whiteout conversion and tree changes."""
