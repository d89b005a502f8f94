"""Privacy: dataset policies (YAML), the column actions they name, and their storage."""
