"""Package mirror: devpi-server behind DataLibrary's policy, audit and authentication."""
