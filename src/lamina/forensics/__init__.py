"""lamina.forensics."""
