"""The archive's metadata: member names, index.txt lines, and the JSON members.

Everything here is pure (no I/O): building the JSON documents the writer stores
(``dumpcodec.json``, per-table header and footer, ``manifest.json``,
``dumpcodec.end``), validating them when read back (an archive is untrusted input:
every field is type-checked and a bad one raises ArchiveError naming the member and
the field), the ``index.txt`` grammar shared with DaCHS, and typed accessors for the
``extra`` and ``info`` keys that dumpcodec's own dump and restore use
(:func:`table_has_data`, :func:`table_via_root`, :func:`table_where`,
:func:`table_sequences`, :func:`free_sequences`).  docs/FORMAT.md is the
specification this module implements.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, Iterable, List, Optional, Tuple, Union

from ..errors import ArchiveError
from .limits import MAX_JSON_DEPTH
from .split_record import check_split

FORMAT_NAME = "dumpcodec-archive"
FORMAT_VERSION = 1

INFO_MEMBER = "dumpcodec.json"
MANIFEST_MEMBER = "manifest.json"
INDEX_MEMBER = "index.txt"
END_MEMBER = "dumpcodec.end"

TABLE_FORMATS = ("binary", "text")
# suffix of a data member by COPY format: the names DaCHS uses
DATA_SUFFIX = {"binary": ".dump", "text": ".textdump"}

# table_000.header.json, table_000.00000.dump, table_000.footer.json
_OUR_MEMBER_RE = re.compile(
    r"^table_(\d{3,})\.(?:(header)\.json|(footer)\.json|(\d{5,})\.(dump|textdump))$")


def table_prefix(index: int) -> str:
    """``table_NNN`` for the table at position ``index`` (at least 3 digits, as DaCHS)."""
    return "table_%03d" % index


def header_member(index: int) -> str:
    return table_prefix(index) + ".header.json"


def footer_member(index: int) -> str:
    return table_prefix(index) + ".footer.json"


def chunk_member(index: int, chunk: int, fmt: str) -> str:
    return "%s.%05d%s" % (table_prefix(index), chunk, DATA_SUFFIX[fmt])


def parse_member_name(name: str) -> Optional[Tuple[int, str, Optional[int]]]:
    """Classify a per-table member name of our layout.

    Returns ``(table_index, kind, chunk_number)`` with kind ``"header"``, ``"footer"``,
    ``"binary"`` or ``"text"`` (chunk_number only for data members), or None when the
    name is not a per-table member.
    """
    m = _OUR_MEMBER_RE.match(name)
    if not m:
        return None
    index = int(m.group(1))
    if m.group(2):
        return index, "header", None
    if m.group(3):
        return index, "footer", None
    return index, ("binary" if m.group(5) == "dump" else "text"), int(m.group(4))


# ---------------------------------------------------------------- index.txt

_PLAIN_RE = re.compile(r"[\x21-\x24\x26-\x7E]*")


def _escape(text: str) -> str:
    # Percent-encode every byte that is not printable ASCII, plus '%' itself, so that a
    # line is always exactly "member SP table-id LF" whatever the names contain
    # (spaces, newlines, non-UTF-8 bytes carried as surrogate escapes).
    if _PLAIN_RE.fullmatch(text):
        return text          # the common case, thousands of lines: nothing to encode
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        if 0x21 <= byte <= 0x7E and byte != 0x25:
            out.append(chr(byte))
        else:
            out.append("%%%02X" % byte)
    return "".join(out)


_PCT_RE = re.compile(rb"%([0-9A-Fa-f]{2})")


def _unescape(raw: bytes) -> str:
    return _PCT_RE.sub(lambda m: bytes([int(m.group(1), 16)]), raw).decode(
        "utf-8", "surrogateescape")


def format_index_line(member: str, table_id: str) -> bytes:
    """One ``index.txt`` line: ``member SP table-id LF``, both percent-encoded."""
    return ("%s %s\n" % (_escape(member), _escape(table_id))).encode("ascii")


def format_index(entries: Iterable[Tuple[str, str]]) -> bytes:
    return b"".join(format_index_line(m, t) for m, t in entries)


def parse_index_file(src: Union[BinaryIO, bytes], *, max_size: int = 64 << 20
                     ) -> List[Tuple[str, str]]:
    """Parse an ``index.txt`` into ``(member_name, table_id)`` tuples, in file order.

    ``src`` is an open binary file (e.g. from ``TarFile.extractfile``) or the bytes.
    Each non-empty line is ``member SP table-id`` terminated by LF (CR LF accepted);
    the line is split at its first space.  ``%XX`` sequences (two hex digits) are
    decoded in both fields, which reads our escaped form and DaCHS's plain form alike
    (DaCHS names never contain ``%XX``).  Bytes that are not UTF-8 come back as
    surrogate escapes.  A line without a space, or more than ``max_size`` bytes of
    input, raises ArchiveError naming the line.
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    else:
        data = src.read(max_size + 1)
    if len(data) > max_size:
        raise ArchiveError(f"{INDEX_MEMBER}: larger than the {max_size}-byte limit")
    result = []
    for lineno, line in enumerate(data.split(b"\n"), 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            continue
        member, sep, table_id = line.partition(b" ")
        if not sep or not member or not table_id:
            raise ArchiveError(f"{INDEX_MEMBER} line {lineno}: expected 'member-name "
                               f"table-id', got {line[:80]!r}")
        result.append((_unescape(member), _unescape(table_id)))
    return result


# ---------------------------------------------------------------- JSON members

class EncodedJSON:
    """A value already encoded by :func:`encode_value`, which :func:`dump_json` splices
    in at any depth: a table's definition is encoded once for its header and the
    manifest, and kept as text (far smaller than the dicts)."""
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class _Splice(Exception):
    """Raised by the C encoder's ``default`` hook at an :class:`EncodedJSON`: the
    document is then walked in Python down to the values that hold one."""


def _refuse(obj: Any) -> Any:
    if type(obj) is EncodedJSON:
        raise _Splice
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _decoded(obj: Any) -> Any:
    if isinstance(obj, EncodedJSON):
        return json.loads(obj.text)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# Compact JSON (no whitespace), sorted keys, UTF-8 as is: the json module's C encoder
# (it is used only without ``indent``), tens of times faster than its pure-Python
# indenting path, which cost tens of milliseconds per table definition at thousands of
# tables.  Readers do not depend on whitespace or key order (docs/FORMAT.md 5).
_OPTIONS = dict(separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                allow_nan=False)
_ENCODER = json.JSONEncoder(default=_refuse, **_OPTIONS)
# what the walk leaves to the json module (keys that are not strings): spliced
# values parsed back, the same text
_FALLBACK = json.JSONEncoder(default=_decoded, **_OPTIONS)
_encode_str = json.encoder.encode_basestring      # the C one where built (no ASCII escaping)


def _encode(obj: Any, out: List[str]) -> None:
    """Append ``obj``'s compact JSON text to ``out``, :class:`EncodedJSON` spliced in."""
    t = type(obj)
    # one C call for the whole value, unless it visibly holds a spliced one (a table
    # header, a manifest entry: straight to the walk)
    if t is not dict or not any(type(v) is EncodedJSON for v in obj.values()):
        try:
            out.append(_ENCODER.encode(obj))
            return
        except _Splice:
            pass
    if t is EncodedJSON:
        out.append(obj.text)
    elif t is dict and all(type(k) is str for k in obj):
        text = _with_markers(obj)
        if text is not None:
            out.append(text)
            return
        # the members between spliced ones in one C call each (a manifest entry: the
        # fields before its definition, the definition, the fields after it)
        items: List[str] = []
        run: Dict[str, Any] = {}
        for key in sorted(obj):
            value = obj[key]
            if type(value) is EncodedJSON:
                _members(run, items)
                run = {}
                items.append(_encode_str(key) + ":" + value.text)
            else:
                run[key] = value
        _members(run, items)
        out.append("{" + ",".join(items) + "}")
    elif t is list or t is tuple:
        sep = "["
        for item in obj:
            out.append(sep)
            _encode(item, out)
            sep = ","
        out.append("]" if obj else "[]")
    else:
        out.append(_FALLBACK.encode(obj))


#: what stands in for the n-th spliced value of a document in :func:`_with_markers`
#: (private-use characters: no JSON keyword or number holds them)
_MARKER = "\ue000dumpcodec-splice-%d\ue001"


def _with_markers(obj: Dict[str, Any]) -> Optional[str]:
    """The text of ``obj``, whose own values include :class:`EncodedJSON`, in one C
    call: each spliced value encoded as a marker string, then put in place of it.  A
    marker's text (quotes included) can only appear as a whole string token, so
    when it appears exactly once that is the one put there; otherwise (a key or a
    value of the document that equals a marker, a spliced text holding one) None,
    and the caller walks the document.  A header or a manifest entry: 6 us, not 20."""
    doc = dict(obj)
    spliced = []
    for key, value in obj.items():
        if type(value) is EncodedJSON:
            marker = _MARKER % len(spliced)
            doc[key] = marker
            spliced.append((_encode_str(marker), value.text))
    try:
        text = _ENCODER.encode(doc)
    except _Splice:
        return None          # a spliced value deeper down: the walk
    for quoted, value in spliced:
        if text.count(quoted) != 1:
            return None
        text = text.replace(quoted, value, 1)
    return text


def _members(run: Dict[str, Any], items: List[str]) -> None:
    """The members of the (sorted) object ``run`` as ``key:value`` texts."""
    if not run:
        return
    try:
        items.append(_ENCODER.encode(run)[1:-1])
        return
    except _Splice:
        pass
    for key, value in run.items():
        parts = [_encode_str(key), ":"]
        _encode(value, parts)
        items.append("".join(parts))


def encode_value(value: Any) -> EncodedJSON:
    """``value`` as :func:`dump_json` writes it, for splicing into documents.  What
    JSON cannot hold raises TypeError or ValueError."""
    return EncodedJSON(_text(value))


def _text(value: Any) -> str:
    try:
        parts: List[str] = []
        _encode(value, parts)
        return "".join(parts)
    except RecursionError:
        raise ValueError("nested too deeply for JSON") from None


def dump_json(doc: Dict[str, Any], max_depth: Optional[int] = None) -> bytes:
    """Serialise a metadata document: compact UTF-8 JSON (no whitespace), sorted keys,
    one trailing newline.

    ``max_depth``: raise ValueError if arrays and objects nest deeper (readers refuse
    more than :data:`~.limits.MAX_JSON_DEPTH`).  What JSON cannot hold raises
    TypeError or ValueError.
    """
    data = (_text(doc) + "\n").encode("utf-8")
    if max_depth is not None and json_depth(data, max_depth) > max_depth:
        raise ValueError(f"JSON nested more than {max_depth} levels deep (an archive "
                         "may hold no more there)")
    return data


# quotes and brackets only; braces read as "[" and "]"
_NOT_QUOTES = bytes(b for b in range(256) if b not in b'"[]{}')
_SQUARE = bytes.maketrans(b"{}", b"[]")
#: bytes of JSON text :func:`json_depth` looks at a time
_DEPTH_SLICE = 1 << 18
_BACKSLASHES = re.compile(rb"\\*")


def json_depth(data: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply arrays and objects nest in the JSON text ``data`` (0 for a scalar),
    counted up to ``limit + 1``.

    Computed on the text, before parsing (a document too deep for the parser must be
    refused, not parsed), in C-speed steps: escaped backslashes and quotes are
    dropped, the strings cut out, everything but brackets deleted; then each round
    removes every innermost pair, so the rounds count the depth.  Text that is not
    JSON gives some number, in linear time; the parser then refuses it.

    The text is taken a slice at a time (a run of backslashes is never cut), so that
    what this holds besides ``data`` is a slice's pieces and the brackets: cutting a
    28 MB manifest into its strings at once took about 300 MB.
    """
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    size = len(view)
    parts: List[bytes] = []
    inside = False           # in a string at the start of the slice
    start = 0
    while start < size:
        end = min(start + _DEPTH_SLICE, size)
        text = bytes(view[start:end])
        if end < size:
            # a run of backslashes (an escape) goes whole into the next slice
            stripped = len(text.rstrip(b"\\"))
            if stripped:
                end = start + stripped
                text = text[:stripped]
            else:
                # the slice is one run of backslashes: take the run whole and the
                # byte after it, which it may escape
                end = min(_BACKSLASHES.match(view, start).end() + 1, size)
                text = bytes(view[start:end])
        if b"\\" in text:
            # pairs first (left to right, as a parser reads them), then escaped quotes
            text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
        # only quotes and brackets matter now (what is left of an escape is a
        # backslash and a letter or digits); then every two quotes side by side go:
        # nothing lies between them, so no bracket changes sides, and most strings
        # (no bracket inside) are gone before the split (a 3 kB header: 5 us, not 15)
        text = text.translate(None, _NOT_QUOTES).replace(b'""', b"")
        pieces = text.split(b'"')
        del text
        parts.append(b"".join(pieces[1 if inside else 0::2]).translate(_SQUARE))
        inside ^= (len(pieces) - 1) % 2 == 1
        del pieces
        start = end
    skeleton = b"".join(parts)
    del parts
    depth = 0
    while skeleton and depth <= limit:
        shorter = skeleton.replace(b"[]", b"")
        if len(shorter) == len(skeleton):
            break          # unbalanced: not JSON
        skeleton = shorter
        depth += 1
    return depth


def load_json(member: str, data: bytes) -> Dict[str, Any]:
    """Parse a metadata member; anything but a JSON object, or arrays and objects
    nested deeper than :data:`~.limits.MAX_JSON_DEPTH`, raises ArchiveError."""
    if json_depth(data) > MAX_JSON_DEPTH:
        raise ArchiveError(f"{member}: JSON nested more than {MAX_JSON_DEPTH} levels "
                           "deep (the limit)")
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArchiveError(f"{member}: not valid JSON ({exc})") from None
    except RecursionError:    # not reached after the depth check; never let it out
        raise ArchiveError(f"{member}: JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise ArchiveError(f"{member}: expected a JSON object, got {type(doc).__name__}")
    return doc


class JSONText:
    """A JSON value a reader keeps as its compact text and parses when asked for
    (:meth:`parse`, a fresh object each time): a table definition read from an archive.

    A definition parsed into dicts takes about 10 KB of Python objects, its compact
    text about 1 KB; a reader of 10,000 tables holds all of them, a restore parses
    one table's at a time.  Built only from a value already parsed and checked
    (depth, type), so parsing it again gives an equal value and cannot fail."""
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    @classmethod
    def of(cls, value: Any) -> "JSONText":
        # key order kept (no sort_keys): the value comes back as it was read
        return cls(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def parse(self) -> Any:
        return json.loads(self.text)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, JSONText):
            return self.text == other.text or self.parse() == other.parse()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JSONText({self.text[:60]!r}{'...' if len(self.text) > 60 else ''})"


def same_json(a: Any, b: Any) -> bool:
    """Whether two values, each a parsed value or a :class:`JSONText`, are equal."""
    if isinstance(a, JSONText) and isinstance(b, JSONText):
        return a == b
    return (a.parse() if isinstance(a, JSONText) else a) == \
        (b.parse() if isinstance(b, JSONText) else b)


def definition_as_text(doc: Dict[str, Any]) -> Dict[str, Any]:
    """``doc`` (a table header or manifest entry, parsed) with its ``definition``, when
    it is an object, kept as :class:`JSONText`; anything else stays for the checks to
    refuse."""
    value = doc.get("definition")
    if type(value) is dict:
        doc["definition"] = JSONText.of(value)
    return doc


_WS_RE = re.compile(r"[ \t\n\r]*")


class _NotPlain(Exception):
    """A manifest the incremental parse leaves to ``json.loads`` (and its errors)."""


class _Tables(list):
    """The ``tables`` array as :func:`_parse_plain` builds it: each entry as the
    ``entry`` function made it, and the first entry that failed its checks (raised
    only after the archive-level fields are checked, as :func:`check_manifest`
    orders them)."""
    error: Optional[ArchiveError] = None


def _parse_manifest_text(text: str, entry: Callable[[int, Any], Any]) -> Dict[str, Any]:
    """``json.loads(text)``, except that each entry of the top-level ``tables`` array
    is parsed alone and handed to ``entry(i, value)`` at once, whose result is kept
    instead (a :class:`_Tables`): the entries of all tables are never Python objects
    at the same time (at 10,000 tables they took about 120 MB).  Anything this does
    not expect (a syntax error, another shape) is parsed by ``json.loads`` instead,
    which then gives its own result or error (the entries stay as parsed)."""
    try:
        return _parse_plain(text, entry)
    except (_NotPlain, ValueError, IndexError):
        pass
    return json.loads(text)


def _parse_plain(text: str, entry: Callable[[int, Any], Any]) -> Dict[str, Any]:
    decode = json.JSONDecoder().raw_decode      # the configuration json.loads uses
    ws = _WS_RE.match
    doc: Dict[str, Any] = {}
    i = ws(text, 0).end()
    if text[i] != "{":
        raise _NotPlain
    i = ws(text, i + 1).end()
    if text[i] == "}":
        i += 1
    else:
        while True:
            if text[i] != '"':
                raise _NotPlain
            key, i = decode(text, i)
            i = ws(text, i).end()
            if text[i] != ":":
                raise _NotPlain
            i = ws(text, i + 1).end()
            if key == "tables" and text[i] == "[":
                tables = _Tables()
                i = ws(text, i + 1).end()
                if text[i] == "]":
                    i += 1
                else:
                    while True:
                        value, i = decode(text, i)
                        if tables.error is None:
                            try:
                                value = entry(len(tables), value)
                            except ArchiveError as exc:
                                tables.error = exc
                        tables.append(value)
                        del value
                        i = ws(text, i).end()
                        if text[i] == ",":
                            i = ws(text, i + 1).end()
                        elif text[i] == "]":
                            i += 1
                            break
                        else:
                            raise _NotPlain
                doc[key] = tables
            else:
                doc[key], i = decode(text, i)
            i = ws(text, i).end()
            if text[i] == ",":
                i = ws(text, i + 1).end()
            elif text[i] == "}":
                i += 1
                break
            else:
                raise _NotPlain
    if ws(text, i).end() != len(text):
        raise _NotPlain
    return doc


def decode_manifest(member: str, data: bytes) -> str:
    """The text of ``manifest.json`` for :func:`load_manifest`, its depth checked first
    (as :func:`load_json`): a caller may then let go of the bytes before parsing."""
    if json_depth(data) > MAX_JSON_DEPTH:
        raise ArchiveError(f"{member}: JSON nested more than {MAX_JSON_DEPTH} levels "
                           "deep (the limit)")
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"{member}: not valid JSON ({exc})") from None


def load_manifest(member: str, data: Union[bytes, str],
                  build: Optional[Callable[[Dict[str, Any]], Any]] = None
                  ) -> Dict[str, Any]:
    """:func:`load_json` and :func:`check_manifest` of ``manifest.json`` (its bytes, or
    its text from :func:`decode_manifest`), with the same checks and errors, holding
    less: each table's ``definition`` comes back as :class:`JSONText`, and with
    ``build`` each entry of ``tables`` as ``build(entry)`` made it from the checked
    entry (the reader's ``TableInfo``), one entry at a time (see
    :func:`_parse_manifest_text`)."""
    def entry(i: int, value: Any) -> Any:
        if isinstance(value, dict):
            definition_as_text(value)
        check_manifest_entry(member, value, i)
        return build(value) if build is not None else value

    text = data if isinstance(data, str) else decode_manifest(member, data)
    try:
        doc = _parse_manifest_text(text, entry)
    except ValueError as exc:
        raise ArchiveError(f"{member}: not valid JSON ({exc})") from None
    except RecursionError:    # not reached after the depth check; never let it out
        raise ArchiveError(f"{member}: JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise ArchiveError(f"{member}: expected a JSON object, got {type(doc).__name__}")
    tables = doc.get("tables")
    if not isinstance(tables, _Tables):
        # parsed by json.loads: the entries as parsed, checked here as always
        check_manifest(member, doc)
        doc["tables"] = [entry(i, t) for i, t in enumerate(doc["tables"])]
        return doc
    # the order of check_manifest: the archive's fields, "tables", then its entries
    check_info(member, doc, "manifest")
    _Check(member, doc).get("tables", list)
    if tables.error is not None:
        raise tables.error
    doc["tables"] = list(tables)
    return doc


class _Check:
    """Field checks on one untrusted JSON document, with messages naming the place."""

    def __init__(self, member: str, doc: Dict[str, Any], where: str = ""):
        self.member, self.doc, self.where = member, doc, where

    def fail(self, key: str, what: str) -> ArchiveError:
        return ArchiveError(f"{self.member}: {self.where}field {key!r} {what}")

    def get(self, key: str, kinds, *, optional: bool = False, default=None):
        if key not in self.doc:
            if optional:
                return default
            raise self.fail(key, "is missing")
        value = self.doc[key]
        if value is None and optional:
            return default
        if kinds is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kinds is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kinds)
        if not ok:
            name = getattr(kinds, "__name__", str(kinds))
            raise self.fail(key, f"must be {name}, got {type(value).__name__}")
        return value

    def count(self, key: str, *, optional: bool = False):
        value = self.get(key, int, optional=optional)
        if value is not None and value < 0:
            raise self.fail(key, "must not be negative")
        return value

    def str_list(self, key: str, *, optional: bool = True):
        value = self.get(key, list, optional=optional)
        if value is not None and not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return value

    def sha256(self, key: str, *, optional: bool = False):
        value = self.get(key, str, optional=optional)
        if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value):
            raise self.fail(key, "must be 64 lowercase hex digits")
        return value


def check_version(member: str, doc: Dict[str, Any], kind: str) -> None:
    """Refuse documents of another format, kind, or a format version we cannot read."""
    if doc.get("archive_format") != FORMAT_NAME:
        raise ArchiveError(f"{member}: not a {FORMAT_NAME} document "
                           f"(archive_format={doc.get('archive_format')!r})")
    version = _Check(member, doc).get("format_version", int)
    if version != FORMAT_VERSION:
        raise ArchiveError(f"{member}: unsupported format_version {version} "
                           f"(this dumpcodec reads version {FORMAT_VERSION})")
    if doc.get("kind") != kind:
        raise ArchiveError(f"{member}: expected a {kind!r} document, "
                           f"got kind={doc.get('kind')!r}")


def check_info(member: str, doc: Dict[str, Any], kind: str = "info") -> Dict[str, Any]:
    """Validate ``dumpcodec.json`` (or the archive part of the manifest)."""
    check_version(member, doc, kind)
    c = _Check(member, doc)
    c.get("created", str)
    c.get("created_unix", float)
    c.get("tool", str, optional=True)
    c.get("server_version", str, optional=True)
    c.get("client_encoding", str, optional=True)
    c.count("chunk_size", optional=True)
    info = c.get("info", dict, optional=True)
    if info is not None:
        check_archive_info(info, f"{member}: field 'info'")
    return doc


def check_table_fields(member: str, doc: Dict[str, Any], where: str = "") -> None:
    """Validate the per-table fields shared by the header and the manifest entry."""
    c = _Check(member, doc, where)
    c.get("table_id", str)
    c.count("index")
    if c.get("format", str) not in TABLE_FORMATS:
        raise c.fail("format", f"must be one of {TABLE_FORMATS}")
    cols = c.str_list("columns")
    types = c.str_list("types")
    if cols is not None and types is not None and len(cols) != len(types):
        raise c.fail("types", f"has {len(types)} entries for {len(cols)} columns")
    if not isinstance(doc.get("definition"), JSONText):    # read as text: an object
        c.get("definition", dict, optional=True)
    c.get("dump_time", float)
    extra = c.get("extra", dict, optional=True)
    c.count("chunk_size", optional=True)
    if extra is not None:
        check_table_extra(extra, f"{member}: {where}field 'extra'")


def check_header(member: str, doc: Dict[str, Any]) -> Dict[str, Any]:
    """Validate a per-table header member."""
    check_version(member, doc, "table-header")
    check_table_fields(member, doc)
    return doc


def check_member_entry(member: str, doc: Dict[str, Any], where: str) -> Dict[str, Any]:
    c = _Check(member, doc, where)
    c.get("name", str)
    c.count("size")
    c.count("rows", optional=True)
    c.sha256("sha256")
    c.count("offset", optional=True)
    c.count("compressed_size", optional=True)
    c.count("range", optional=True)
    return doc


def check_footer(member: str, doc: Dict[str, Any]) -> Dict[str, Any]:
    """Validate a per-table footer member."""
    check_version(member, doc, "table-footer")
    c = _Check(member, doc)
    c.get("table_id", str)
    c.count("index")
    c.count("rows")
    c.count("raw_size")
    members = c.get("members", list)
    for i, m in enumerate(members):
        if not isinstance(m, dict):
            raise c.fail("members", f"entry {i} is not an object")
        check_member_entry(member, m, f"members[{i}] ")
    return doc


def check_manifest(member: str, doc: Dict[str, Any]) -> Dict[str, Any]:
    """Validate ``manifest.json``: the archive info plus one entry per table."""
    check_info(member, doc, "manifest")
    c = _Check(member, doc)
    tables = c.get("tables", list)
    for i, t in enumerate(tables):
        check_manifest_entry(member, t, i)
    return doc


def check_manifest_entry(member: str, t: Any, i: int) -> Dict[str, Any]:
    """Validate entry ``i`` of the manifest's ``tables``."""
    if not isinstance(t, dict):
        raise _Check(member, {}).fail("tables", f"entry {i} is not an object")
    where = f"tables[{i}] "
    check_table_fields(member, t, where)
    tc = _Check(member, t, where)
    tc.count("rows")
    tc.count("raw_size")
    tc.count("compressed_size", optional=True)
    for key in ("header", "footer"):
        check_member_entry(member, tc.get(key, dict), f"{where}{key} ")
    members = tc.get("members", list)
    for j, m in enumerate(members):
        if not isinstance(m, dict):
            raise tc.fail("members", f"entry {j} is not an object")
        check_member_entry(member, m, f"{where}members[{j}] ")
    return t


def check_end(member: str, doc: Dict[str, Any]) -> Dict[str, Any]:
    """Validate the end marker."""
    check_version(member, doc, "end")
    c = _Check(member, doc)
    c.count("tables")
    c.count("members")
    c.sha256("manifest_sha256")
    c.sha256("index_sha256")
    return doc


# ---------------------------------------------------------------- known extra keys
#
# ``extra`` (per table) and ``info`` (per archive) are open objects: a writer may store
# any JSON there.  A few keys have a meaning that dumpcodec's restore relies on; they
# are type-checked when read (like every other field) and read through the functions
# below, never with ``.get`` on the raw dict.

@dataclass(frozen=True)
class SequenceValue:
    """A sequence's state when it was dumped: ``setval(name, last_value, is_called)``."""
    schema: str
    name: str
    last_value: int
    is_called: bool


@dataclass(frozen=True)
class FreeSequence(SequenceValue):
    """A sequence no column owns, recorded with its definition (``info.sequences``)."""
    data_type: str
    start: int
    increment: int
    min_value: int
    max_value: int
    cache: int
    cycle: bool
    comment: Optional[str] = None


_INT, _BOOL, _STR = "an integer", "true or false", "a string"


def _kind_ok(value: Any, kind: str) -> bool:
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _BOOL:
        return isinstance(value, bool)
    return isinstance(value, str)


def _checked(doc: Dict[str, Any], key: str, kind: str, where: str) -> Any:
    value = doc[key]
    if not _kind_ok(value, kind):
        raise ArchiveError(f"{where}: {key!r} must be {kind}, got {type(value).__name__}")
    return value


_VALUE_FIELDS = (("schema", _STR), ("name", _STR), ("last_value", _INT),
                 ("is_called", _BOOL))
_FREE_FIELDS = _VALUE_FIELDS + (("data_type", _STR), ("start", _INT), ("increment", _INT),
                                ("min_value", _INT), ("max_value", _INT), ("cache", _INT),
                                ("cycle", _BOOL))


def _sequence_list(doc: Dict[str, Any], where: str, fields) -> List[Dict[str, Any]]:
    entries = doc.get("sequences")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ArchiveError(f"{where}: 'sequences' must be a list, got "
                           f"{type(entries).__name__}")
    out = []
    for i, e in enumerate(entries):
        at = f"{where}: sequences[{i}]"
        if not isinstance(e, dict):
            raise ArchiveError(f"{at} must be an object, got {type(e).__name__}")
        missing = [k for k, _ in fields if k not in e]
        if missing:
            raise ArchiveError(f"{at} lacks {', '.join(repr(k) for k in missing)}")
        item = {k: _checked(e, k, kind, at) for k, kind in fields}
        if fields is _FREE_FIELDS and e.get("comment") is not None:
            item["comment"] = _checked(e, "comment", _STR, at)
        out.append(item)
    return out


def check_table_extra(extra: Dict[str, Any], where: str = "extra") -> None:
    """Type-check the keys of a table's ``extra`` that have a meaning (ArchiveError)."""
    for key, kind in (("data", _BOOL), ("via_root", _BOOL), ("where", _STR)):
        if extra.get(key) is not None:
            _checked(extra, key, kind, where)
    _sequence_list(extra, where, _VALUE_FIELDS)
    as_text = extra.get("as_text")
    if as_text is not None and (not isinstance(as_text, list) or not all(
            isinstance(c, str) for c in as_text)):
        raise ArchiveError(f"{where}: 'as_text' must be a list of column names")
    check_split(extra.get("split"), where)


def check_archive_info(info: Dict[str, Any], where: str = "info") -> None:
    """Type-check the keys of the archive's ``info`` that have a meaning."""
    if info.get("snapshot") is not None:
        _checked(info, "snapshot", _STR, where)
    _sequence_list(info, where, _FREE_FIELDS)


def table_has_data(extra: Dict[str, Any]) -> bool:
    """``extra.data``: False when the dump left the table's rows out on purpose (only
    its definition is in the archive); True when absent."""
    check_table_extra(extra)
    return extra.get("data") is not False


def table_via_root(extra: Dict[str, Any]) -> bool:
    """``extra.via_root``: True when a partitioned table's rows were dumped through
    its root (all partitions' rows in one table, ``--partitions root``)."""
    check_table_extra(extra)
    return extra.get("via_root") is True


def table_where(extra: Dict[str, Any]) -> Optional[str]:
    """``extra.where``: the row filter the dump applied (SQL text, informative; never
    executed on restore), or None when every row was dumped."""
    check_table_extra(extra)
    return extra.get("where")


def table_as_text(extra: Dict[str, Any]) -> List[str]:
    """``extra.as_text``: columns whose data is their text (OID-alias types by name,
    vectors), cast back to the definition's type on restore."""
    check_table_extra(extra)
    return list(extra.get("as_text") or ())


def table_sequences(extra: Dict[str, Any]) -> List[SequenceValue]:
    """``extra.sequences``: the states of the sequences the table's columns own, as
    dumped (informative: restore takes them from the definition)."""
    return [SequenceValue(**e) for e in _sequence_list(extra, "extra", _VALUE_FIELDS)]


def free_sequences(info: Dict[str, Any]) -> List[FreeSequence]:
    """``info.sequences``: sequences no column owns, dumped with their definitions
    and states (``create_dump(..., sequences=[schemas])``)."""
    return [FreeSequence(**e) for e in _sequence_list(info, "info", _FREE_FIELDS)]
