"""lamina.testing."""
