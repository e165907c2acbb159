"""Checking bytes that arrive from outside (``put``, imports) before they are stored: they must parse as
their extension says, read as they stream, with bounds so memory does not grow with the input."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterable, Iterator

from .errors import ValidationError
from .formats import MAX_CSV_FIELD, _decode, _load_json

#: The largest JSON document checked (bytes): a ``.json`` input, or one line of a ``.jsonl``. JSON is parsed
#: whole (the standard library has no incremental parser), so checking one takes memory of a few times this
#: (text, plus a pointer per array element); larger data belongs in JSONL or CSV, which are checked line by line.
MAX_JSON_BYTES = 64 * 2**20
#: The longest CSV line checked (bytes): what checking a CSV holds in memory at once.
MAX_CSV_LINE = 64 * 2**20


def check_content(ext: str, data: bytes) -> None:
    """Raise ValidationError if ``data`` is empty or does not parse as ``ext`` (json, jsonl, csv); others pass."""
    check_stream(ext, [data])


def check_stream(ext: str, chunks: Iterable[bytes]) -> None:
    """Read ``chunks`` (the input's bytes, in order) to their end; ValidationError if they are empty or do not
    parse as ``ext`` (json, jsonl, csv; other extensions pass).

    Memory does not grow with the input: JSONL and CSV are checked line by line
    (a line up to :data:`MAX_JSON_BYTES`, resp. :data:`MAX_CSV_LINE`, a CSV field up
    to :data:`MAX_CSV_FIELD`); a JSON document is checked whole, up to :data:`MAX_JSON_BYTES`.
    """
    pieces = _nonempty(chunks)
    if ext == "json":
        document = _read_bounded(pieces, MAX_JSON_BYTES, "input")
        _load_json(_decode(document, "input"), "input", keep=False)
    elif ext == "jsonl":
        for number, (offset, line) in enumerate(_byte_lines(pieces, MAX_JSON_BYTES), start=1):
            _load_json(_decode(line, "input", offset), f"input line {number}", keep=False)
    elif ext == "csv":
        csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD))  # only ever raised: the limit is global
        try:
            for _ in csv.reader(_text_lines(pieces), strict=True):
                pass
        except csv.Error as exc:
            raise ValidationError(f"input is not valid CSV: {exc}") from None
    else:
        for _ in pieces:
            pass


def _nonempty(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks, but ValidationError ("input is empty") if they hold no byte at all."""
    empty = True
    for chunk in chunks:
        if chunk:
            empty = False
            yield chunk
    if empty:
        raise ValidationError("input is empty")


def _read_bounded(chunks: Iterable[bytes], limit: int, what: str) -> bytearray:
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise ValidationError(
                f"{what} is a JSON document larger than {limit // 2**20} MiB, the most that is checked (it is parsed "
                "whole); store large data as JSONL or CSV, which are checked line by line"
            )
    return data


def _byte_lines(chunks: Iterable[bytes], limit: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line) for every ``\\n``-ended line and a last unended one; ValidationError for a line over ``limit`` bytes."""
    pending, offset = bytearray(), 0
    for chunk in chunks:
        pending += chunk
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if (len(pending) if end < 0 else end) - start > limit:
                raise ValidationError(f"input has a line longer than {limit // 2**20} MiB (from byte {offset + start}), "
                                      "the most that is checked")  # fmt: skip
            if end < 0:
                break
            yield offset + start, bytes(pending[start:end])
            start = end + 1
        del pending[:start]
        offset += start
    if pending:
        yield offset, bytes(pending)


def _text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 text lines with their ends (``\\r\\n``, ``\\r`` or ``\\n``, as ``newline=""`` reads them) for csv.

    ValidationError naming the first byte that is not UTF-8, a NUL, or a line longer than :data:`MAX_CSV_LINE`.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending, offset = "", 0
    for chunk in itertools.chain(chunks, [None]):
        final = chunk is None
        data = b"" if chunk is None else chunk
        held = len(decoder.getstate()[0])  # bytes of a character begun in the last chunk
        try:
            text = decoder.decode(data, final=final)
        except UnicodeDecodeError as exc:
            raise ValidationError(f"input is not valid UTF-8 (byte {offset - held + exc.start})") from None
        offset += len(data)
        if "\x00" in text:
            raise ValidationError("input is not valid CSV: it contains a NUL byte")
        buffer = pending + text
        lines, pending = io.StringIO(buffer, newline=""), ""
        for line in lines:
            if not final and line[-1] != "\n" and lines.tell() == len(buffer):  # unended, or a \r\n split in two
                pending = line
                break
            yield line
        if len(pending) > MAX_CSV_LINE:
            raise ValidationError(f"input has a line longer than {MAX_CSV_LINE // 2**20} MiB, the most that is checked")
