"""The ways to write an artifact (bytes, a stream, JSON, CSV), over one ``write`` of :class:`Pending` items.

:class:`catalog.ops.write.Writer` publishes and records each call at once; a
:class:`catalog.ops.write.Batch` stages each call and records them all
together. Both take their methods from :class:`WriteMethods`. (The explain
pair's rules are :mod:`catalog.ops.families`.)
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any, BinaryIO, Generic, TypeVar, cast

from ..core import fs
from ..core.content import check_content, check_stream
from ..core.errors import StoreError
from ..core.formats import csv_bytes, json_bytes
from ..core.names import ArtifactName, build_name, check_time, store_path, validate_ext

if TYPE_CHECKING:
    from ..core.settings import Settings


@dataclass(frozen=True)
class Pending:
    """An artifact ready to publish: its name, its bytes, and the event that will record it.

    ``data`` is the bytes, or an iterable of byte chunks read while it is
    published (then ``check``, if given, sees the chunks as they are copied and
    raises to refuse them: :func:`catalog.core.fs.publish_stream`).
    """

    name: ArtifactName
    data: bytes | Iterable[bytes]
    action: str = "write"
    details: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[[Iterator[bytes]], None] | None = None

    def rel_path(self, layout: str) -> str:
        """Its store path under ``layout``: ``{type}/{filename}``, or in its partition (:func:`~catalog.core.names.store_path`)."""
        return store_path(self.name, layout)


R = TypeVar("R")


class WriteMethods(Generic[R]):
    """The generic ways to write an artifact (bytes, a stream, JSON, CSV), each handed to :meth:`write`.

    :class:`~catalog.ops.write.Writer` publishes and records each call at once and returns
    records (``R`` is :class:`~catalog.core.records.ArtifactRecord`); a
    :class:`~catalog.ops.write.Batch` stages each call and records them all when it ends, and
    returns :class:`~catalog.ops.write.Queued` handles. The scanner's typed families build on this
    (:class:`catalog.cryptorun.writer.ScannerFamilies`).
    """

    settings: Settings

    def write(self, items: Sequence[Pending], *, pair: bool = False) -> list[R]:
        """Write ``items`` (``pair``: one linked pair); one result per item, in order. See :meth:`catalog.ops.write.Writer.write`."""
        raise NotImplementedError

    def write_bytes(
        self, artifact_type: str, prefix: str, data: bytes, ext: str, *, created_at: datetime | None = None,
        check: bool = True,
    ) -> R:  # fmt: skip
        """Store ``data`` as ``{type}/{time}-{prefix}-{type}.{ext}`` (in its partition folder under ``layout`` month
        or day); JSON, JSONL and CSV must parse first.

        Raises :class:`ValidationError` (name, extension, content),
        :class:`CollisionError`, :class:`StoreError` and :class:`CommitError`.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StoreError(f"write_bytes takes bytes, not {type(data).__name__}")
        data = bytes(data)
        name = self.name(artifact_type, prefix, ext, created_at, allow_extra=True)
        if check:
            check_content(name.ext, data)
        return self.write([Pending(name, data)])[0]

    def write_stream(
        self, artifact_type: str, prefix: str, source: BinaryIO | Iterable[bytes], ext: str, *,
        created_at: datetime | None = None, check: bool = True,
    ) -> R:  # fmt: skip
        """Store what ``source`` holds as :meth:`write_bytes` stores bytes: a binary file or stream (read to
        its end), or an iterable of byte chunks (a generator of downloaded pieces, say).

        Memory does not grow with the size: the bytes are hashed and written to
        the temp file as they are read (in a batch too: before this returns), and
        JSON, JSONL and CSV are checked as they pass
        (:func:`catalog.core.content.check_stream`: its bounds). Content that is
        refused leaves nothing behind. Raises what :meth:`write_bytes` raises.
        """
        if isinstance(source, (str, bytes, bytearray, memoryview, io.TextIOBase)):
            raise StoreError(f"write_stream takes a binary file or an iterable of byte chunks, not {type(source).__name__}")
        name = self.name(artifact_type, prefix, ext, created_at, allow_extra=True)
        content_check = partial(check_stream, name.ext) if check else None
        chunks = fs.read_chunks(cast(BinaryIO, source)) if hasattr(source, "read") else source
        return self.write([Pending(name, chunks, check=content_check)])[0]

    def write_json(self, artifact_type: str, prefix: str, data: Any, *, created_at: datetime | None = None) -> R:
        """Serialise ``data`` as JSON (``formats.json_indent``) and store it.

        NaN, infinities and naive times raise ValidationError; otherwise errors
        are those of :meth:`catalog.ops.write.Writer.write`.
        """
        name = self.name(artifact_type, prefix, "json", created_at)
        return self.write([Pending(name, json_bytes(data, self.settings.json_indent))])[0]

    def write_csv(
        self, artifact_type: str, prefix: str, rows: Iterable[Sequence[Any]], *, created_at: datetime | None = None
    ) -> R:
        """Serialise ``rows`` as CSV (the first the header; floats with ``formats.csv_precision`` decimals) and store it.

        Bad cells raise ValidationError; otherwise errors are those of :meth:`catalog.ops.write.Writer.write`.
        """
        name = self.name(artifact_type, prefix, "csv", created_at)
        return self.write([Pending(name, csv_bytes(rows, self.settings.csv_precision))])[0]

    @staticmethod
    def name(
        artifact_type: str, prefix: str, ext: str, created_at: datetime | None, *, allow_extra: bool = False
    ) -> ArtifactName:
        """The artifact's name at ``created_at`` (default: now), truncated to the second; raises ValidationError."""
        now = datetime.now(timezone.utc).replace(microsecond=0)
        moment = now if created_at is None else check_time(created_at, now)
        name = build_name(moment, prefix, artifact_type, ext)
        validate_ext(name.type, name.ext, allow_extra=allow_extra)
        return name
