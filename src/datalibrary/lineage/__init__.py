"""Data-flow tracing: OpenLineage run events stored in the database, and the graph over them."""
