"""DataLibrary: self-hosted data science as a service for sensitive clinical data."""

__version__ = "0.1.0"


def connect(url: str | None = None, token: str | None = None):  # type: ignore[no-untyped-def]
    """Connect the SDK to a platform (``datalibrary.sdk.connect``)."""
    from datalibrary.sdk import connect as sdk_connect  # lazy: http.client + ssl, ~0.3 s on every import

    return sdk_connect(url, token)
