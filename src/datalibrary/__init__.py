"""DataLibrary: self-hosted data science as a service for sensitive clinical data."""

__version__ = "0.1.0"
