"""The DataLibrary SDK: a small client of the REST API for notebooks, scripts and laptops.

Inside a workspace it is pre-configured: ``connect()`` reads ``DATALIBRARY_URL`` (the
platform's Unix socket, ``unix:///run/datalibrary/api.sock``) and ``DATALIBRARY_TOKEN`` (a
token scoped to the workspace). It uses only the standard library so it runs in every
environment; pyarrow, pandas or polars are imported only for results in those forms.

    lake = datalibrary.connect()
    df = lake.sql("SELECT * FROM cdisc.dm").to_pandas()
"""

from datalibrary.sdk.client import Client, SdkError, connect
from datalibrary.sdk.files import FileCollection
from datalibrary.sdk.lake import Column, Query, Table

__all__ = ["Client", "Column", "FileCollection", "Query", "SdkError", "Table", "connect"]
