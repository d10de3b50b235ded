"""lamina.oci."""
