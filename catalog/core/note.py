"""Signed notes, their Ed25519 keys, witness cosignatures and key rotation: check the catalog's checkpoints yourself.

Pure (``cryptography`` and the standard library): an auditor checks a signed
checkpoint with this module alone.

**Signed note** (C2SP signed-note, as Go's ``golang.org/x/mod/sumdb/note``
implements it): a UTF-8 text ending in a newline, a blank line, then one or
more signature lines ``— <key name> <base64(key id ‖ signature)>``. No ASCII
control character but the newline; a key name is non-empty, without spaces or
``+``. At most :data:`MAX_SIGNATURES` signature lines (Go's limit).

**Keys** (Go's formats): a private key ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ 32-byte seed)>``, its
verifier ``<name>+<hex key id>+<base64(0x01 ‖ 32-byte public key)>``; the key id
is the first 4 bytes (big-endian) of ``SHA-256(name ‖ "\\n" ‖ 0x01 ‖ public key)``.
An Ed25519 signature line signs the note text as is (signature type 0x01).

**Witness cosignature** (C2SP tlog-cosignature, ``cosignature/v1``, signature type
0x04): the same Ed25519 key, with key id ``SHA-256(name ‖ "\\n" ‖ 0x04 ‖ public key)[:4]``,
signs ``"cosignature/v1\\ntime <unix seconds>\\n" ‖ note text``; the signature is
``key id ‖ 8-byte big-endian time ‖ Ed25519 signature``. A witness's verifier
may be given in either form (0x01 or 0x04), as transparency-dev/formats accepts.

**Key rotation**: the old key signs a note :func:`rotation_text` naming the log
and the new verifier; :func:`accepted_keys` follows such announcements from the
keys one trusts.

Errors: malformed text (a key, a note) raises
:class:`~catalog.core.errors.ValidationError`; a signature by a known key that
does not verify raises :class:`~catalog.core.errors.SignatureError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import SignatureError, ValidationError

ALG_ED25519 = 0x01
"""Signature type of a plain Ed25519 note signature (C2SP signed-note)."""

ALG_COSIGNATURE_V1 = 0x04
"""Signature type of a timestamped Ed25519 witness cosignature (C2SP tlog-cosignature)."""

MAX_SIGNATURES = 100
"""Signature lines a note may carry (Go's ``note.Open`` refuses more)."""

SIGNATURE_PREFIX = "— "  # em dash (U+2014), space
ROTATION_HEADER = "catalog-key-rotation/v1"


def valid_name(name: str) -> bool:
    """A key name (or origin) a note may carry: non-empty, no Unicode space, no ``+``, no control character."""
    return bool(name) and "+" not in name and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)


def key_id(name: str, alg: int, public: bytes) -> int:
    """The uint32 key id: the first 4 bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ alg ‖ public key) (C2SP)."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4], "big")


def b64decode(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4), canonical only (so that no two texts mean the same bytes); ValidationError."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise ValidationError(f"{what} is not base64") from None
    if base64.b64encode(raw).decode() != text:
        raise ValidationError(f"{what} is not base64 in its canonical form")
    return raw


def b64encode(raw: bytes) -> str:
    """Standard base64 (RFC 4648 §4) of ``raw``, as text."""
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Verifier:
    """A public key that checks signatures: name, key id, signature type (0x01 or 0x04) and 32 raw bytes."""

    name: str
    key_id: int
    alg: int
    public: bytes

    @property
    def label(self) -> str:
        """``<name>+<hex key id>``: how messages and events name this key."""
        return f"{self.name}+{self.key_id:08x}"

    @property
    def vkey(self) -> str:
        """The verifier key text: ``<name>+<hex key id>+<base64(alg ‖ public key)>``."""
        return f"{self.label}+{b64encode(bytes([self.alg]) + self.public)}"

    def as_cosigner(self) -> Verifier:
        """The same key as a witness's ``cosignature/v1`` verifier (signature type 0x04, its own key id)."""
        return Verifier(self.name, key_id(self.name, ALG_COSIGNATURE_V1, self.public), ALG_COSIGNATURE_V1, self.public)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """True if ``signature`` (without the key id) signs ``text`` under this key and signature type."""
        if self.alg == ALG_COSIGNATURE_V1:
            if len(signature) != 8 + 64:
                return False
            text, signature = cosignature_message(int.from_bytes(signature[:8], "big"), text), signature[8:]
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, eq=False)
class Signer:
    """A private Ed25519 key with its name; :attr:`verifier` is its public half. Never shown by ``repr``."""

    name: str
    private: Ed25519PrivateKey = field(repr=False)

    @property
    def verifier(self) -> Verifier:
        """The public key (signature type 0x01) that checks this key's note signatures."""
        public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, key_id(self.name, ALG_ED25519, public), ALG_ED25519, public)

    @property
    def skey(self) -> str:
        """The private key text: ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>`` (keep it secret)."""
        seed = self.private.private_bytes_raw()
        return f"PRIVATE+KEY+{self.verifier.label}+{b64encode(bytes([ALG_ED25519]) + seed)}"

    def signature_line(self, text: bytes) -> str:
        """The note signature line of this key over ``text``: ``— <name> <base64(key id ‖ Ed25519 signature)>\\n``."""
        raw = self.verifier.key_id.to_bytes(4, "big") + self.private.sign(text)
        return f"{SIGNATURE_PREFIX}{self.name} {b64encode(raw)}\n"

    def cosignature_line(self, text: bytes, timestamp: int) -> str:
        """The witness's ``cosignature/v1`` line over ``text`` at ``timestamp`` (POSIX seconds, 0 ≤ t < 2**63)."""
        if not 0 <= timestamp < 2**63:
            raise ValidationError(f"a cosignature's time must be 0 to 2**63 - 1 seconds, got {timestamp}")
        cosigner = self.verifier.as_cosigner()
        signed = self.private.sign(cosignature_message(timestamp, text))
        raw = cosigner.key_id.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + signed
        return f"{SIGNATURE_PREFIX}{self.name} {b64encode(raw)}\n"


def generate(name: str) -> Signer:
    """A new Ed25519 key named ``name`` (from the operating system's random source); ValidationError for a bad name."""
    if not valid_name(name):
        raise ValidationError(f"key name {name[:60]!r} must be non-empty, without spaces, '+' or control characters")
    return Signer(name, Ed25519PrivateKey.generate())


def _key_parts(text: str, parts: int, what: str) -> tuple[list[str], bytes]:
    fields = text.split("+", parts - 1)
    if len(fields) != parts or not valid_name(fields[-3]):
        raise ValidationError(f"{what} is malformed: expected {'PRIVATE+KEY+' if parts == 5 else ''}NAME+KEYID+KEY")
    if not re.fullmatch(r"[0-9a-fA-F]{8}", fields[-2]):
        raise ValidationError(f"{what} is malformed: its key id is not 8 hex digits")
    raw = b64decode(fields[-1], what)
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise ValidationError(f"{what} is not an Ed25519 key (signature type 0x01 or 0x04, 32 bytes)")
    return fields, raw


def parse_verifier(text: str) -> Verifier:
    """A verifier key ``<name>+<hex key id>+<base64(alg ‖ public key)>``, alg 0x01 or 0x04.

    Raises ValidationError if it is malformed, of another algorithm or size, or
    if its key id does not match its name and key.
    """
    fields, raw = _key_parts(text, 3, "verifier key")
    verifier = Verifier(fields[0], key_id(fields[0], raw[0], raw[1:]), raw[0], raw[1:])
    if f"{verifier.key_id:08x}" != fields[1].lower():
        raise ValidationError(f"verifier key {fields[0]}+{fields[1]}: the key id does not match the name and key")
    return verifier


def parse_signer(text: str) -> Signer:
    """A private key ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>``; ValidationError if malformed.

    The key id must match the public key derived from the seed (as Go checks).
    """
    if not text.startswith("PRIVATE+KEY+"):
        raise ValidationError("private key is malformed: expected PRIVATE+KEY+NAME+KEYID+KEY")
    fields, raw = _key_parts(text, 5, "private key")
    if raw[0] != ALG_ED25519:
        raise ValidationError("private key is malformed: expected PRIVATE+KEY+NAME+KEYID+KEY (Ed25519)")
    signer = Signer(fields[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if f"{signer.verifier.key_id:08x}" != fields[3].lower():
        raise ValidationError(f"private key {fields[2]}+{fields[3]}: the key id does not match the name and key")
    return signer


def cosignature_message(timestamp: int, text: bytes) -> bytes:
    """What a ``cosignature/v1`` signs: ``cosignature/v1\\ntime <timestamp>\\n`` then the note text (C2SP)."""
    return b"cosignature/v1\ntime %d\n" % timestamp + text


# -- notes -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line: the key name, the key id, and the signature bytes that follow the key id."""

    name: str
    key_id: int
    signature: bytes

    @property
    def label(self) -> str:
        """``<name>+<hex key id>``."""
        return f"{self.name}+{self.key_id:08x}"

    @property
    def line(self) -> str:
        """The signature line as a note carries it (ending in a newline)."""
        return f"{SIGNATURE_PREFIX}{self.name} {b64encode(self.key_id.to_bytes(4, 'big') + self.signature)}\n"

    @property
    def timestamp(self) -> int | None:
        """The time a ``cosignature/v1`` carries (POSIX seconds), or None if it is not of that length."""
        return int.from_bytes(self.signature[:8], "big") if len(self.signature) == 8 + 64 else None


@dataclass(frozen=True)
class Note:
    """A text (ending in a newline) and its signatures, in order."""

    text: str
    signatures: tuple[Signature, ...] = ()

    def encode(self) -> bytes:
        """The note as bytes: the text, then (if signed) a blank line and the signature lines."""
        if not self.signatures:
            return self.text.encode()
        return (self.text + "\n" + "".join(s.line for s in self.signatures)).encode()

    def with_line(self, line: str) -> Note:
        """This note with one more signature line, replacing any earlier one by the same key (name and id)."""
        added = parse_note((self.text + "\n" + line).encode()).signatures[0]
        kept = tuple(s for s in self.signatures if (s.name, s.key_id) != (added.name, added.key_id))
        return Note(self.text, (*kept, added))


def _check_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("malformed note: not UTF-8") from None
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise ValidationError("malformed note: a control character other than newline")
    return text


def parse_note(data: bytes, *, signed: bool = True) -> Note:
    """Parse a note: its text, then a blank line and its signature lines (C2SP signed-note).

    The text is separated from the signatures by the last blank line. With
    ``signed=False`` a text without that blank line is accepted as a note with
    no signatures. Nothing is verified here (see :func:`verified_by`). Raises
    ValidationError (``malformed note: …``).
    """
    text = _check_text(data)
    split = text.rfind("\n\n")
    if split < 0:
        if signed or not text.endswith("\n"):
            raise ValidationError("malformed note: no blank line before signature lines" if signed else
                                  "malformed note: the text does not end in a newline")  # fmt: skip
        return Note(text)
    body, lines = text[: split + 1], text[split + 2 :]
    if not lines.endswith("\n"):
        raise ValidationError("malformed note: the last signature line does not end in a newline")
    signatures: list[Signature] = []
    for line in lines[:-1].split("\n"):
        if len(signatures) == MAX_SIGNATURES:
            raise ValidationError(f"malformed note: more than {MAX_SIGNATURES} signatures")
        name, _, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        if not line.startswith(SIGNATURE_PREFIX) or not valid_name(name) or not encoded:
            raise ValidationError(f"malformed note: {line[:60]!r} is not a signature line '— NAME SIGNATURE'")
        raw = b64decode(encoded, f"the signature of {name}")
        if len(raw) < 5:
            raise ValidationError(f"malformed note: the signature of {name} is too short")
        signatures.append(Signature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return Note(body, tuple(signatures))


def verified_by(note: Note, verifiers: Iterable[Verifier]) -> list[Verifier]:
    """The known keys whose signatures on ``note`` verify, in the note's order (each once).

    Signatures by unknown keys (name and key id not both known) are ignored,
    as C2SP requires. Raises SignatureError if a known key's signature does
    not verify (the note was altered, or forged), and ValidationError if two
    different known keys share a name and key id.
    """
    known: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        other = known.setdefault((verifier.name, verifier.key_id), verifier)
        if other != verifier:
            raise ValidationError(f"two different keys are named {verifier.label}: trust only one of them")
    found: list[Verifier] = []
    for signature in note.signatures:
        key = known.get((signature.name, signature.key_id))
        if key is None or key in found:
            continue
        if not key.verify(note.text.encode(), signature.signature):
            raise SignatureError(f"the signature of {key.label} does not verify: the note was altered or forged")
        found.append(key)
    return found


def sign(text: str, *signers: Signer) -> Note:
    """``text`` (ending in a newline, valid note text) signed by each of ``signers`` with Ed25519 (type 0x01)."""
    _check_text(text.encode())
    if not text.endswith("\n"):
        raise ValidationError("malformed note: the text does not end in a newline")
    note = Note(text)
    for signer in signers:
        note = note.with_line(signer.signature_line(text.encode()))
    return note


# -- key rotation ----------------------------------------------------------------------------------------------


def rotation_text(origin: str, new_key: Verifier) -> str:
    """The note text an old key signs to announce ``new_key`` for the log ``origin``.

    Its first line ``catalog-key-rotation/v1`` and its second (the origin, never
    a decimal tree size) keep it from ever reading as a checkpoint.
    """
    return f"{ROTATION_HEADER}\n{origin}\n{new_key.vkey}\n"


@dataclass(frozen=True)
class Rotation:
    """A key rotation as the log records it: where (seq), the new verifier key, and the signed announcement."""

    seq: int
    new_key: str
    announcement: str


def accepted_keys(trusted: Sequence[Verifier], origin: str, rotations: Iterable[Rotation]
                  ) -> tuple[list[Verifier], list[tuple[Rotation, str]]]:  # fmt: skip
    """The keys whose signatures count: those trusted, and each new key announced by one already accepted.

    ``rotations`` in log order; each announcement is a note over
    :func:`rotation_text` (``origin``, the new key) signed by a key accepted so
    far. Returns the accepted keys (trusted first, then in announcement
    order) and the rotations refused, each with why.
    """
    accepted, refused = list(trusted), []
    for rotation in rotations:
        try:
            new_key = parse_verifier(rotation.new_key)
            note = parse_note(rotation.announcement.encode())
            if note.text != rotation_text(origin, new_key):
                raise ValidationError(f"its announcement does not name {new_key.label} for {origin}")
            if not verified_by(note, accepted):
                raise SignatureError("no key accepted so far signed it")
        except (ValidationError, SignatureError) as exc:
            refused.append((rotation, str(exc)))
            continue
        if new_key not in accepted:
            accepted.append(new_key)
    return accepted, refused
