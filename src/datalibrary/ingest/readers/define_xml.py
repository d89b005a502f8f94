"""Column labels from a CDISC define.xml (v1 and v2): ``{table: {column: label}}``.

Parsed with defusedxml on the decoded text: a define.xml that declares a DOCTYPE or
entities is refused whatever its encoding (UTF-16 included), so no entity expands and nothing
is fetched. The file is bounded in size (a define.xml is metadata: a few MB).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - types only; parsing goes through defusedxml
from functools import lru_cache
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import XMLParser

from datalibrary.ingest.readers.base import ReadError

_DEF_LABEL_KEYS = ("{http://www.cdisc.org/ns/def/v1.0}Label", "{http://www.cdisc.org/ns/def/v2.0}Label")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _label_of(element: ET.Element) -> str | None:
    for key in _DEF_LABEL_KEYS:
        if element.get(key):
            return element.get(key)
    for child in element:  # define v2: <Description><TranslatedText>label</TranslatedText>
        if _local(child.tag) == "Description":
            for text in child:
                if _local(text.tag) == "TranslatedText" and text.text:
                    return text.text.strip()
    return None


MAX_BYTES = 64 << 20


def _elements(path: Path):  # type: ignore[no-untyped-def]
    """End events of the document, parsed by a hardened parser that forbids DTDs, entities
    and external references (checked on what expat decoded, not on raw bytes)."""
    if path.stat().st_size > MAX_BYTES:
        raise ReadError(path.name, f"define.xml is larger than {MAX_BYTES >> 20} MB")
    parser = XMLParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    pull = ET.XMLPullParser(events=("end",), _parser=parser)  # type: ignore[call-arg]
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            pull.feed(chunk)
            yield from pull.read_events()
    pull.close()
    yield from pull.read_events()


def define_labels(path: Path) -> dict[str, dict[str, str]]:
    """Labels of every variable of every dataset (ItemGroupDef) declared in the file."""
    # absolute, not resolved: an upload's define.xml is an unnamed view behind a /proc link,
    # which only the kernel can follow; the inode, size and time tell one file from another
    info = Path(path).stat()
    return _cached(Path(path).absolute(), (info.st_ino, info.st_size, info.st_mtime_ns))


@lru_cache(maxsize=8)
def _cached(path: Path, _version: tuple[int, int, int]) -> dict[str, dict[str, str]]:
    groups: dict[str, list[str]] = {}
    items: dict[str, tuple[str, str | None]] = {}
    try:
        for _, element in _elements(path):
            tag = _local(element.tag)
            if tag == "ItemGroupDef":
                name = element.get("Name") or element.get("OID") or ""
                refs = [ref.get("ItemOID", "") for ref in element if _local(ref.tag) == "ItemRef"]
                groups[name.upper()] = refs
                element.clear()
            elif tag == "ItemDef":
                items[element.get("OID", "")] = (element.get("Name", ""), _label_of(element))
                element.clear()
    except DefusedXmlException as exc:
        raise ReadError(path.name, "define.xml with a DOCTYPE or entity declarations is refused") from exc
    except ET.ParseError as exc:
        raise ReadError(path.name, f"define.xml is not well-formed XML: {exc}") from exc
    labels: dict[str, dict[str, str]] = {}
    for table, refs in groups.items():
        columns = {}
        for oid in refs:
            name, label = items.get(oid, ("", None))
            if name and label:
                columns[name] = label
        labels[table] = columns
    return labels
