"""Data access: grants (table, column, row) and access requests."""
