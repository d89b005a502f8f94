"""Files copied into every workspace (not imported by the platform itself)."""
