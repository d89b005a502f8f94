"""The lake: Iceberg tables in a local directory or an S3-compatible store, catalogued in the app DB."""
