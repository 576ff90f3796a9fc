"""TDX quote model: a bounds-checked parser for quote versions 4 and 5.

Layout (Intel DCAP ``sgx_quote_4.h``/``sgx_quote_5.h``; all integers little-endian)::

    header 48     u16 version | u16 att_key_type | u32 tee_type | u16 qe_svn | u16 pce_svn
                  | 16 qe_vendor_id | 20 user_data
    v5 only       u16 body_type (2 = TD 1.0, 3 = TD 1.5) | u32 body_size
    body          TD report: 584 bytes (TD 1.0) or 648 bytes (TD 1.5)
    u32 signature_data_length, then signature data:
        64 ECDSA signature over header+body | 64 attestation public key
        | u16 cert type (6 = QE report certification data) | u32 size, then:
            384 QE report | 64 QE report signature | u16 + N QE auth data
            | u16 cert type (5 = PCK certificate chain) | u32 size | certification data

Every length is checked against what it must contain, so a quote whose lengths lie is refused
with the field named. Zero bytes after the signature data are tolerated as padding (some
platforms hand out fixed-size zero-filled buffers, e.g. GCP's 8000-byte quotes); any non-zero
byte there is refused, since nothing signs it.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Final

from attestation.errors import QuoteFormatError

TDX_TEE_TYPE: Final = 0x81
ECDSA_P256: Final = 2
INTEL_QE_VENDOR_ID: Final = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")

BODY_TD10: Final = 2
BODY_TD15: Final = 3
_BODY_SIZES: Final = {BODY_TD10: 584, BODY_TD15: 648}

CERT_QE_REPORT: Final = 6
CERT_PCK_CHAIN: Final = 5
_KNOWN_CERT_TYPES: Final = frozenset(range(1, 8))

HEADER_SIZE: Final = 48
QE_REPORT_SIZE: Final = 384

TD_ATTR_DEBUG_BIT: Final = 0
TD_ATTR_SEPT_VE_DISABLE_BIT: Final = 28

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True, slots=True)
class QuoteHeader:
    """The 48-byte quote header."""

    version: int
    attestation_key_type: int
    tee_type: int
    qe_svn: int
    pce_svn: int
    qe_vendor_id: bytes
    user_data: bytes


@dataclass(frozen=True, slots=True)
class TdReport:
    """The TD report body (TD 1.0; TD 1.5 adds ``tee_tcb_svn2`` and ``mr_service_td``)."""

    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmr0: bytes
    rtmr1: bytes
    rtmr2: bytes
    rtmr3: bytes
    report_data: bytes
    tee_tcb_svn2: bytes | None = None
    mr_service_td: bytes | None = None

    @property
    def td_attributes_value(self) -> int:
        """TDATTRIBUTES as an integer (the field is little-endian)."""
        return int.from_bytes(self.td_attributes, "little")

    @property
    def xfam_value(self) -> int:
        """XFAM as an integer (little-endian)."""
        return int.from_bytes(self.xfam, "little")

    @property
    def debug(self) -> bool:
        """TDATTRIBUTES.DEBUG (bit 0): the host can read and write the TD's memory."""
        return bool(self.td_attributes_value >> TD_ATTR_DEBUG_BIT & 1)

    @property
    def sept_ve_disable(self) -> bool:
        """TDATTRIBUTES.SEPT_VE_DISABLE (bit 28): EPT violations do not reach the guest as #VE."""
        return bool(self.td_attributes_value >> TD_ATTR_SEPT_VE_DISABLE_BIT & 1)

    @property
    def rtmrs(self) -> tuple[bytes, bytes, bytes, bytes]:
        """RTMR0..RTMR3."""
        return (self.rtmr0, self.rtmr1, self.rtmr2, self.rtmr3)


@dataclass(frozen=True, slots=True)
class QeReport:
    """The Quoting Enclave's SGX report body (384 bytes) as carried in the quote."""

    cpu_svn: bytes
    misc_select: int
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    report_data: bytes
    raw: bytes


@dataclass(frozen=True, slots=True)
class SignatureData:
    """ECDSA quote signature data with its QE report certification data."""

    signature: bytes
    attestation_key: bytes
    qe_report: QeReport
    qe_report_signature: bytes
    qe_auth_data: bytes
    certification_data_type: int
    certification_data: bytes

    @property
    def pck_chain_pem(self) -> tuple[bytes, ...]:
        """The PEM certificates (leaf first) when the certification data is a PCK chain."""
        if self.certification_data_type != CERT_PCK_CHAIN:
            return ()
        return tuple(m.group(0) + b"\n" for m in _PEM_CERT.finditer(self.certification_data))


@dataclass(frozen=True, slots=True)
class Quote:
    """A parsed TDX quote. ``raw`` excludes any zero padding (counted in ``padding``)."""

    raw: bytes
    header: QuoteHeader
    body_type: int
    td_report: TdReport
    signature_data: SignatureData
    regions: tuple[tuple[str, int, int], ...]
    padding: int

    def region(self, name: str) -> tuple[int, int]:
        """Byte range ``[start, end)`` in ``raw`` of a named part: header, td_report, signature,
        attestation_key, qe_report, qe_report_signature, qe_auth_data, certification_data."""
        for region, start, end in self.regions:
            if region == name:
                return (start, end)
        raise KeyError(name)

    @property
    def version(self) -> int:
        """Quote format version (4 or 5)."""
        return self.header.version

    @property
    def is_td15(self) -> bool:
        """Whether the body is a TD 1.5 report (with TEE_TCB_SVN2 and MRSERVICETD)."""
        return self.body_type == BODY_TD15

    @property
    def signed_range(self) -> tuple[int, int]:
        """Byte range the attestation key signs: header and body."""
        return (0, self.region("td_report")[1])


class _Reader:
    """Bounds-checked little-endian reader that names the field on every failure."""

    __slots__ = ("base", "data", "pos")

    def __init__(self, data: bytes, base: int = 0) -> None:
        self.data = data
        self.pos = 0
        self.base = base  # offset of ``data`` in the quote, for error messages

    def take(self, size: int, field: str) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise QuoteFormatError(
                field,
                f"truncated: needs {size} bytes at offset {self.base + self.pos}, "
                f"only {len(self.data) - self.pos} remain",
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u16(self, field: str) -> int:
        value: int = struct.unpack("<H", self.take(2, field))[0]
        return value

    def u32(self, field: str) -> int:
        value: int = struct.unpack("<I", self.take(4, field))[0]
        return value


def parse_quote(raw: bytes) -> Quote:
    """Parse a TDX quote (v4 or v5); raise ``QuoteFormatError`` naming the bad field."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise QuoteFormatError("quote", f"expected bytes, got {type(raw).__name__}")
    data = bytes(raw)
    reader = _Reader(data)
    regions: dict[str, tuple[int, int]] = {}

    header = _parse_header(reader)
    regions["header"] = (0, reader.pos)

    if header.version == 4:
        body_type = BODY_TD10
    else:
        body_type = reader.u16("body_type")
        if body_type not in _BODY_SIZES:
            raise QuoteFormatError(
                "body_type", f"{body_type} is not a TD report (2 = TD 1.0, 3 = TD 1.5)"
            )
        body_size = reader.u32("body_size")
        if body_size != _BODY_SIZES[body_type]:
            raise QuoteFormatError(
                "body_size",
                f"{body_size} does not match body type {body_type} "
                f"({_BODY_SIZES[body_type]} bytes)",
            )
    start = reader.pos
    td_report = _parse_td_report(reader, body_type)
    regions["td_report"] = (start, reader.pos)

    signature_data = _parse_signature_data(reader, regions)

    trailing = data[reader.pos :]
    if trailing.strip(b"\x00"):
        raise QuoteFormatError(
            "trailing_data",
            f"{len(trailing)} bytes follow the signature data and not all are zero padding",
        )
    return Quote(
        raw=data[: reader.pos],
        header=header,
        body_type=body_type,
        td_report=td_report,
        signature_data=signature_data,
        regions=tuple((name, start, end) for name, (start, end) in regions.items()),
        padding=len(trailing),
    )


def _parse_header(reader: _Reader) -> QuoteHeader:
    version = reader.u16("header.version")
    key_type = reader.u16("header.attestation_key_type")
    tee_type = reader.u32("header.tee_type")
    # TEE type first: an SGX quote is best described as "not TDX", not as "wrong version".
    if tee_type != TDX_TEE_TYPE:
        raise QuoteFormatError(
            "header.tee_type", f"{tee_type:#x} is not TDX ({TDX_TEE_TYPE:#x}): not a TDX quote"
        )
    if version not in (4, 5):
        raise QuoteFormatError("header.version", f"{version} is not a TDX quote version (4 or 5)")
    if key_type != ECDSA_P256:
        raise QuoteFormatError(
            "header.attestation_key_type", f"{key_type} is not ECDSA P-256 ({ECDSA_P256})"
        )
    return QuoteHeader(
        version=version,
        attestation_key_type=key_type,
        tee_type=tee_type,
        qe_svn=reader.u16("header.qe_svn"),
        pce_svn=reader.u16("header.pce_svn"),
        qe_vendor_id=reader.take(16, "header.qe_vendor_id"),
        user_data=reader.take(20, "header.user_data"),
    )


def _parse_td_report(reader: _Reader, body_type: int) -> TdReport:
    def take(size: int, name: str) -> bytes:
        return reader.take(size, f"td_report.{name}")

    fields = {
        "tee_tcb_svn": take(16, "tee_tcb_svn"),
        "mr_seam": take(48, "mr_seam"),
        "mr_signer_seam": take(48, "mr_signer_seam"),
        "seam_attributes": take(8, "seam_attributes"),
        "td_attributes": take(8, "td_attributes"),
        "xfam": take(8, "xfam"),
        "mr_td": take(48, "mr_td"),
        "mr_config_id": take(48, "mr_config_id"),
        "mr_owner": take(48, "mr_owner"),
        "mr_owner_config": take(48, "mr_owner_config"),
        "rtmr0": take(48, "rtmr0"),
        "rtmr1": take(48, "rtmr1"),
        "rtmr2": take(48, "rtmr2"),
        "rtmr3": take(48, "rtmr3"),
        "report_data": take(64, "report_data"),
    }
    if body_type == BODY_TD15:
        return TdReport(
            **fields, tee_tcb_svn2=take(16, "tee_tcb_svn2"), mr_service_td=take(48, "mr_service_td")
        )
    return TdReport(**fields)


def _parse_signature_data(reader: _Reader, regions: dict[str, tuple[int, int]]) -> SignatureData:
    length = reader.u32("signature_data_length")
    base = reader.pos
    section = _Reader(reader.take(length, "signature_data"), base)

    def mark(name: str, start: int) -> None:
        regions[name] = (base + start, base + section.pos)

    start = section.pos
    signature = section.take(64, "signature_data.signature")
    mark("signature", start)
    start = section.pos
    attestation_key = section.take(64, "signature_data.attestation_key")
    mark("attestation_key", start)

    cert_type = section.u16("signature_data.certification_type")
    if cert_type != CERT_QE_REPORT:
        raise QuoteFormatError(
            "signature_data.certification_type",
            f"{cert_type} is not QE report certification data ({CERT_QE_REPORT})",
        )
    cert_size = section.u32("signature_data.certification_size")
    remaining = len(section.data) - section.pos
    if cert_size != remaining:
        raise QuoteFormatError(
            "signature_data.certification_size",
            f"declares {cert_size} bytes but the signature data holds {remaining}",
        )

    start = section.pos
    qe_report = _parse_qe_report(section.take(QE_REPORT_SIZE, "qe_report"))
    mark("qe_report", start)
    start = section.pos
    qe_report_signature = section.take(64, "qe_report_signature")
    mark("qe_report_signature", start)
    auth_size = section.u16("qe_auth_data.size")
    start = section.pos
    qe_auth_data = section.take(auth_size, "qe_auth_data")
    mark("qe_auth_data", start)

    inner_type = section.u16("certification_data.type")
    if inner_type not in _KNOWN_CERT_TYPES:
        raise QuoteFormatError("certification_data.type", f"{inner_type} is not a known type")
    inner_size = section.u32("certification_data.size")
    remaining = len(section.data) - section.pos
    if inner_size != remaining:
        raise QuoteFormatError(
            "certification_data.size",
            f"declares {inner_size} bytes but {remaining} remain in the signature data",
        )
    start = section.pos
    certification_data = section.take(inner_size, "certification_data")
    mark("certification_data", start)

    data = SignatureData(
        signature=signature,
        attestation_key=attestation_key,
        qe_report=qe_report,
        qe_report_signature=qe_report_signature,
        qe_auth_data=qe_auth_data,
        certification_data_type=inner_type,
        certification_data=certification_data,
    )
    if inner_type == CERT_PCK_CHAIN and not data.pck_chain_pem:
        raise QuoteFormatError("certification_data", "PCK chain holds no PEM certificate")
    return data


def _parse_qe_report(raw: bytes) -> QeReport:
    (misc_select,) = struct.unpack_from("<I", raw, 16)
    isv_prod_id, isv_svn = struct.unpack_from("<HH", raw, 256)
    return QeReport(
        cpu_svn=raw[0:16],
        misc_select=misc_select,
        attributes=raw[48:64],
        mr_enclave=raw[64:96],
        mr_signer=raw[128:160],
        isv_prod_id=isv_prod_id,
        isv_svn=isv_svn,
        report_data=raw[320:384],
        raw=raw,
    )
