"""lamina.transports."""
