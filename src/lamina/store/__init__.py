"""lamina.store."""
