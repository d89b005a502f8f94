"""PDF and text documents: never silently accepted.

A document cannot be de-identified the way a table or a DICOM header can (its text is laid
out in pages, drawn with fonts, sometimes only pixels), so it is checked instead:

1. the collection must be **classified** by a steward ("protocol documents, no patient
   data"): a statement, audited, of what the collection may hold. An unclassified
   collection quarantines every document;
2. the text is extracted (pypdf for PDF: page text, annotations and their authors, form field
   values, bookmarks, and every text string of every object written, the text shown by form
   XObjects such as annotation appearances) and scanned with the free-text detection of the tabular policies
   (``files.freetext``): any finding — a person name, a date, an identifier, a name seen in
   the study's identifying columns — quarantines the document with the kinds found;
3. what cannot be checked is quarantined too: encrypted PDFs, embedded files, JavaScript,
   pages that are images without text (scans), text whose glyphs have no Unicode mapping
   (odd font encodings), documents beyond the size limits.

An accepted PDF is stored rewritten by pypdf without its document information dictionary,
XMP metadata (the document's, its pages', images' and fonts') and objects nothing reaches
(the old revisions an incremental update leaves behind): the only changes made to it.
"""

from __future__ import annotations

import io
import unicodedata
from collections import Counter
from typing import Any

from datalibrary.files import freetext
from datalibrary.files.deidentified import PDF, Context, Deidentified
from datalibrary.files.dicom import Rejected

MAX_PAGES = 2_000
MAX_TEXT = 5_000_000
# keys of streams whose bytes are not text: images, fonts, colour profiles, functions, CMaps
TYPED = {"/Type", "/Subtype", "/Length1", "/Length2", "/Length3", "/N", "/FunctionType", "/ShadingType",
         "/PatternType", "/CMapName", "/BitsPerSample"}  # fmt: skip
UNMAPPED_SHARE = 0.01  # more than 1% of characters without a Unicode mapping: not checkable


def _unmapped(text: str) -> int:
    """Characters an extraction produces when a font has no Unicode mapping."""
    count = 0
    for char in text:
        if char in "\n\r\t":
            continue
        category = unicodedata.category(char)
        if char == "\ufffd" or category in ("Co", "Cn", "Cs") or category == "Cc":
            count += 1
    return count


def _folded(text: str) -> str:
    """The text as a reader sees it: compatibility forms folded (full-width letters,
    ligatures) and invisible format characters (zero-width spaces, soft hyphens) removed, so
    "Ｊｏｈｎ" or "J\u200bohn" is checked as "John"."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf")


def _font_problem(page: Any) -> str | None:
    """Why the page's text cannot be extracted faithfully, if a font says so: a Type3 or
    CID (Identity) font without a ToUnicode map, or glyph names outside the Adobe Glyph List
    (subset fonts with private names). Such text extracts as wrong letters or nothing, so a
    name in it would pass unseen."""
    from pypdf._codecs.adobe_glyphs import adobe_glyphs

    resources = page.get("/Resources")
    fonts = resources.get_object().get("/Font") if resources is not None else None
    for name, ref in (fonts.get_object() if fonts is not None else {}).items():
        font = ref.get_object()
        if "/ToUnicode" in font:
            continue
        subtype = font.get("/Subtype")
        if subtype == "/Type3":
            return f"font {name} is a Type3 font without a Unicode map"
        if subtype == "/Type0" and "Identity" in str(font.get("/Encoding", "")):
            return f"font {name} is a CID font (Identity encoding) without a Unicode map"
        encoding = font.get("/Encoding")
        encoding = encoding.get_object() if encoding is not None else None
        if isinstance(encoding, dict):
            unknown = [
                g for g in encoding.get("/Differences", []) if isinstance(g, str) and g not in adobe_glyphs
            ]
            if unknown:
                return (
                    f"font {name} names {len(unknown)} glyphs outside the Adobe Glyph List "
                    "without a Unicode map"
                )
    return None


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    text = str(value.get_object() if hasattr(value, "get_object") else value)
    return [text] if text.strip() else []


def _outline(items: Any) -> list[str]:
    out: list[str] = []
    for item in items or []:
        if isinstance(item, list):
            out.extend(_outline(item))
        else:
            out.extend(_strings(getattr(item, "title", None)))
    return out


def _shown(stream: Any, writer: Any) -> list[str]:
    """The strings a form XObject (an annotation's appearance, a stamp) shows, read from its
    text operators: not drawn on a page, so ``extract_text`` does not see them."""
    from pypdf.generic import ContentStream

    out: list[str] = []
    for operands, operator in ContentStream(stream, writer).operations:
        if operator in (b"Tj", b"'", b'"', b"TJ"):
            for operand in operands:
                items = operand if isinstance(operand, list) else [operand]
                out.extend(str(item) for item in items if isinstance(item, str | bytes))
    return ["".join(out)] if out else []


def _objects(writer: Any) -> Any:
    """Every value of every object the writer holds, depth first (dictionaries before their
    values, so a caller may remove entries on the way)."""
    from pypdf.generic import ArrayObject, DictionaryObject

    def values(value: Any) -> Any:
        yield value
        if isinstance(value, DictionaryObject | ArrayObject):
            for item in list(value.values() if isinstance(value, DictionaryObject) else value):
                yield from values(item)

    for obj in list(writer._objects):
        if obj is not None:
            yield from values(obj)


def _drop_metadata(writer: Any) -> int:
    """``/Metadata`` (XMP) removed from every dictionary: pages, images and fonts have it too."""
    from pypdf.generic import DictionaryObject, NameObject

    dropped = 0
    for value in _objects(writer):
        if isinstance(value, DictionaryObject) and NameObject("/Metadata") in value:
            del value[NameObject("/Metadata")]
            dropped += 1
    return dropped


def _every_string(writer: Any) -> list[str]:
    """Every text string of every object the output keeps (annotation subjects and names,
    link URIs, form field names and defaults, actions, private catalog keys...), and the text
    form XObjects show: what is written is what is checked, wherever a producer put it."""
    from pypdf.generic import ArrayObject, StreamObject, TextStringObject

    contents: set[int] = set()  # page content streams: read by extract_text
    for page in writer.pages:
        found = page.get("/Contents")
        found = found.get_object() if found is not None else None
        for item in found if isinstance(found, ArrayObject) else [found] if found is not None else []:
            contents.add(id(item.get_object()))
    out: list[str] = []
    for value in _objects(writer):
        if isinstance(value, TextStringObject):
            out.append(str(value))
        elif isinstance(value, StreamObject) and value.get("/Subtype") == "/Form":
            out.extend(_shown(value, writer))
        elif isinstance(value, StreamObject) and id(value) not in contents and not TYPED & set(value):
            # a stream no reader draws (private application data): its bytes, read as text
            out.append(value.get_data().decode("latin-1"))
    return [t for t in out if t.strip()]


def _pdf(data: bytes) -> tuple[str, bytes, dict[str, Any], Counter[str]]:
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PyPdfError

    actions: Counter[str] = Counter()
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise Rejected("encrypted PDF: its text cannot be checked")
        pages = len(reader.pages)
        if pages > MAX_PAGES:
            raise Rejected(f"PDF with more than {MAX_PAGES} pages")
        root = reader.trailer["/Root"].get_object()
        names = root.get("/Names")
        names = names.get_object() if names is not None else {}
        if "/JavaScript" in names or "/JS" in str(root.get("/OpenAction", "")):
            raise Rejected("PDF with JavaScript: not accepted")
        if "/EmbeddedFiles" in names or reader.attachments:
            raise Rejected("PDF with embedded files: they cannot be checked")
        texts: list[str] = []
        for number, page in enumerate(reader.pages, 1):
            problem = _font_problem(page)
            if problem:
                raise Rejected(
                    f"page {number}: {problem} (an odd text encoding): the text cannot be checked "
                    "for identifiers"
                )
            text = page.extract_text() or ""
            resources = page.get("/Resources")
            resources = resources.get_object() if resources is not None else {}
            if not text.strip() and resources.get("/XObject"):
                raise Rejected(
                    f"page {number} is an image without text (a scan?): it cannot be checked for identifiers"
                )
            texts.append(text)
            for annotation in page.get("/Annots") or []:
                annotation = annotation.get_object()
                for key in ("/Contents", "/T", "/RC"):
                    texts.extend(_strings(annotation.get(key)))
            if sum(len(t) for t in texts) > MAX_TEXT:
                raise Rejected(f"more than {MAX_TEXT} characters of text")
        for field in (reader.get_fields() or {}).values():
            texts.extend(_strings(field.get("/V")))
        texts.extend(_outline(reader.outline))
        writer = PdfWriter(clone_from=reader)
        if reader.metadata is not None:
            actions["X"] += 1
        writer.metadata = None
        actions["X"] += _drop_metadata(writer)
        # objects no page or catalog reaches (an incremental update's old revision) are dropped
        writer.compress_identical_objects(remove_duplicates=False, remove_unreferenced=True)
        texts.extend(_every_string(writer))
        out = io.BytesIO()
        writer.write(out)
    except Rejected:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError,
            AssertionError, OSError, ZeroDivisionError) as exc:  # fmt: skip
        raise Rejected(f"not a readable PDF ({type(exc).__name__})") from None
    text = "\n".join(texts)
    if not text.strip():
        raise Rejected("no extractable text: the PDF cannot be checked for identifiers")
    return text, out.getvalue(), {"pages": pages, "characters": len(text)}, actions


def check(path: str, data: bytes, media_type: str, context: Context) -> Deidentified:
    """The document as stored, or ``Rejected`` with the reason (never its text)."""
    if not context.classification.strip():
        raise Rejected(
            "a document (PDF or text) enters only a collection a steward classified, e.g. 'protocol "
            "documents, no patient data' (datalibrary files classify): this collection is not classified"
        )
    if media_type == PDF:
        text, out, details, actions = _pdf(data)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected("a text document that is not UTF-8") from None
        if len(text) > MAX_TEXT:
            raise Rejected(f"more than {MAX_TEXT} characters of text")
        out, details, actions = data, {"characters": len(text)}, Counter()
    unmapped = _unmapped(text)
    if unmapped > max(20, UNMAPPED_SHARE * len(text)):
        raise Rejected(
            f"{unmapped} characters of the text have no Unicode mapping (an odd font encoding?): "
            "the document cannot be checked for identifiers"
        )
    kinds = freetext.findings(_folded(text), context.words)
    if kinds:
        raise Rejected(
            f"the document's text holds {freetext.describe(kinds)}: the collection is classified "
            f"'{context.classification}', which admits no patient data"
        )
    actions["K"] += 1
    details["classification"] = context.classification
    return Deidentified(
        out, media_type, None, {"acquisition_date": None}, details, actions, "document text scan v1"
    )
