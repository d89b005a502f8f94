"""What the HTTP front ends share: request dependencies (settings, DB session, the caller,
permission checks) and the server that runs the composed app. It sits below ``api`` and
``web`` so that neither imports the other; ``datalibrary.app`` composes them."""
