"""CLI commands, one module per area; each exports ``COMMANDS``."""
