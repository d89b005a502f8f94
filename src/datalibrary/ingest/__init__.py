"""Ingestion: readers for clinical file formats, the pipeline, jobs and sources."""
