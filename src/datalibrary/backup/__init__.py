"""Backups and restore of a whole installation: database, lake, people's files, sealed keys."""
