"""Query service: SQL guard (sqlglot), planning over Iceberg, locked-down DuckDB, metering."""
