"""lamina.runtime."""
