"""lamina.driver."""
