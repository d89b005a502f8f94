"""File collections: de-identified files (DICOM first) in the lake, indexed by an Iceberg table."""
