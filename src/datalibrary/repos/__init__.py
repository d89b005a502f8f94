"""Project Git: bare repositories in the state directory, served by ``git http-backend``."""
