"""The DataLibrary SDK: a small client of the REST API for notebooks, scripts and laptops.

Inside a workspace it is pre-configured: ``connect()`` reads ``DATALIBRARY_URL`` (the
platform's Unix socket, ``unix:///run/datalibrary/api.sock``) and ``DATALIBRARY_TOKEN`` (a
token scoped to the workspace). It uses only the standard library so it runs in every
environment. Query methods arrive with the query service.
"""

from datalibrary.sdk.client import Client, SdkError, connect

__all__ = ["Client", "SdkError", "connect"]
