"""Subject, issuer and expiry of an X.509 certificate, read from its DER bytes with the standard library only.

The API probe sees the server certificate as raw DER (it verifies nothing, so `ssl` parses nothing); this reads
the three fields a report shows. Anything it cannot read raises CertificateError: the caller then keeps no
certificate rather than a wrong one.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from portcullis.model.facts import ServerCertificate

_SEQUENCE = 0x30
_SET = 0x31
_OID = 0x06
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_CONTEXT_VERSION = 0xA0
_TEXT_ENCODINGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be", 0x1C: "utf-32-be"}
# RFC 4514's short names, and the few more that openssl also shortens.
_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
}


class CertificateError(ValueError):
    pass


def _element(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, contents, offset after the element) of the DER element at `offset`."""
    if offset + 2 > len(data):
        raise CertificateError("truncated element")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise CertificateError("unsupported length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    end = offset + length
    if end > len(data):
        raise CertificateError("element runs past the end")
    return tag, data[offset:end], end


def _children(contents: bytes) -> list[tuple[int, bytes]]:
    items = []
    offset = 0
    while offset < len(contents):
        tag, value, offset = _element(contents, offset)
        items.append((tag, value))
    return items


def _oid(value: bytes) -> str:
    if not value:
        raise CertificateError("empty object identifier")
    parts = [min(value[0] // 40, 2), value[0] - 40 * min(value[0] // 40, 2)]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(str(part) for part in parts)


def _escape(text: str) -> str:
    escaped = "".join("\\" + ch if ch in ',+"\\<>;=' else ch for ch in text)
    if escaped.startswith((" ", "#")):
        escaped = "\\" + escaped
    return escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped


def _name(value: bytes) -> str:
    """A Name in RFC 4514 order: the last relative distinguished name first."""
    rdns = []
    for set_tag, rdn in _children(value):
        if set_tag != _SET:
            raise CertificateError("a name holds something other than a SET")
        pairs = []
        for _, attribute in _children(rdn):
            (oid_tag, oid), (text_tag, text) = _children(attribute)[:2]
            if oid_tag != _OID:
                raise CertificateError("an attribute without an object identifier")
            oid_text = _oid(oid)
            encoding = _TEXT_ENCODINGS.get(text_tag)
            shown = text.decode(encoding, errors="replace") if encoding else "#" + text.hex()
            pairs.append(f"{_SHORT_NAMES.get(oid_text, oid_text)}={_escape(shown)}")
        rdns.append("+".join(pairs))
    return ",".join(reversed(rdns))


def _time(tag: int, value: bytes) -> str:
    text = value.decode("ascii", errors="replace")
    if tag == _UTC_TIME:
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise CertificateError("validity is not a time")
    try:
        moment = datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise CertificateError(f"unreadable time {text!r}") from None
    return moment.isoformat()


def read_certificate(der: bytes) -> ServerCertificate:
    """Subject, issuer, expiry and fingerprint of a DER certificate; CertificateError if it cannot be read."""
    try:
        return _read(der)
    except CertificateError:
        raise
    except (IndexError, ValueError) as exc:  # a structure shorter or stranger than a certificate's
        raise CertificateError(f"malformed certificate: {exc}") from None


def _read(der: bytes) -> ServerCertificate:
    tag, certificate, _ = _element(der, 0)
    if tag != _SEQUENCE:
        raise CertificateError("not a DER certificate")
    tbs_tag, tbs = _children(certificate)[0]
    if tbs_tag != _SEQUENCE:
        raise CertificateError("no to-be-signed part")
    fields = _children(tbs)
    if fields and fields[0][0] == _CONTEXT_VERSION:
        fields = fields[1:]
    if len(fields) < 5:
        raise CertificateError("too few certificate fields")
    # serial number, signature algorithm, issuer, validity, subject
    _, _, (_, issuer), (_, validity), (_, subject) = fields[:5]
    times = _children(validity)
    if len(times) != 2:
        raise CertificateError("validity is not two times")
    return ServerCertificate(
        subject=_name(subject),
        issuer=_name(issuer),
        not_after=_time(*times[1]),
        sha256=hashlib.sha256(der).hexdigest(),
    )
