"""Byte-exact TDX quote v4 encoding (Intel's sgx_quote_4.h layout, all integers little-endian).

0    header (48): u16 version=4 | u16 att_key_type=2 | u32 tee_type=0x81 | 4 reserved |
                  16 QE vendor id | 20 user data
48   TD report (584): see `TdReportFields` (report data last, at 568)
632  u32 signature data length, then from 636:
     64 ECDSA r||s over bytes [0:632] by the attestation key | 64 attestation public key |
     u16 cert type 6 | u32 size | 384 QE report | 64 QE report signature (PCK key) |
     u16 size + QE auth data | u16 cert type 5 | u32 size | PEM chain (PCK, PCK CA, root)
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, fields

from attestation.simulated._pki import CPU_SVN, Key, raw_public_key, sign_raw
from attestation.simulated.errors import SimulatedInputError

QUOTE_VERSION = 4
ATTESTATION_KEY_TYPE_ECDSA_P256 = 2
TEE_TYPE_TDX = 0x81
INTEL_QE_VENDOR_ID = bytes.fromhex("939A7233F79C4CA9940A0DB3957F0607")
CERT_TYPE_PCK_CHAIN = 5
CERT_TYPE_QE_REPORT = 6
SIGNED_LENGTH = 48 + 584

TD_ATTRIBUTE_DEBUG = 1 << 0
TD_ATTRIBUTE_SEPT_VE_DISABLE = 1 << 28

# The simulated TD quoting enclave, as its QE report and the QE identity describe it.
QE_MRSIGNER = hashlib.sha256(b"mosaik-py SIMULATED TD quoting enclave signer").digest()
QE_MRENCLAVE = hashlib.sha256(b"mosaik-py SIMULATED TD quoting enclave").digest()
QE_ISVPRODID = 2
QE_ISVSVN = 4
QE_MISCSELECT = 0
# INIT | MODE64BIT | PROVISIONKEY, XFRM x87 SSE AVX AVX-512 (the flags of Intel's TD QE).
QE_ATTRIBUTES = bytes.fromhex("1500000000000000E700000000000000")
QE_AUTH_DATA = hashlib.sha256(b"mosaik-py SIMULATED QE auth data").digest()

_ZERO48 = bytes(48)


def _sha384(label: str) -> bytes:
    return hashlib.sha384(f"mosaik-py SIMULATED {label}".encode()).digest()


@dataclass(frozen=True, slots=True)
class TdReportFields:
    """The TD report of a simulated quote, everything but the report data.

    Defaults describe a production TD: SEPT_VE_DISABLE set, DEBUG clear, the simulated TDX
    module (TEE_TCB_SVN: module SVN 5, major version 1) and fixed, obviously fake
    measurements. Every field is raw bytes of the length the TD report gives it.
    """

    tee_tcb_svn: bytes = bytes([5, 1, 2]) + bytes(13)
    mrseam: bytes = _sha384("TDX module")
    mrsignerseam: bytes = _ZERO48  # zero: the module is signed by Intel
    seam_attributes: bytes = bytes(8)
    td_attributes: bytes = TD_ATTRIBUTE_SEPT_VE_DISABLE.to_bytes(8, "little")
    xfam: bytes = bytes.fromhex("E702060000000000")
    mrtd: bytes = _sha384("MRTD")
    mrconfigid: bytes = _ZERO48
    mrowner: bytes = _ZERO48
    mrownerconfig: bytes = _ZERO48
    rtmr0: bytes = _sha384("RTMR0")
    rtmr1: bytes = _sha384("RTMR1")
    rtmr2: bytes = _sha384("RTMR2")
    rtmr3: bytes = _ZERO48

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            expected = len(field.default) if isinstance(field.default, bytes) else 0
            if not isinstance(value, bytes):
                raise SimulatedInputError(
                    f"{field.name}: expected bytes, got {type(value).__name__}"
                )
            if len(value) != expected:
                raise SimulatedInputError(
                    f"{field.name}: expected {expected} bytes, got {len(value)}"
                )

    def encode(self, report_data: bytes) -> bytes:
        """The 584-byte TD report body carrying ``report_data``."""
        return b"".join(getattr(self, field.name) for field in fields(self)) + report_data


def qe_report(attestation_key: Key) -> bytes:
    """The 384-byte SGX report of the simulated QE, binding the attestation key.

    Its report data starts with SHA-256(attestation public key || QE auth data).
    """
    binding = hashlib.sha256(raw_public_key(attestation_key) + QE_AUTH_DATA).digest()
    return b"".join(
        [
            CPU_SVN,
            struct.pack("<I", QE_MISCSELECT),
            bytes(28),
            QE_ATTRIBUTES,
            QE_MRENCLAVE,
            bytes(32),
            QE_MRSIGNER,
            bytes(96),
            struct.pack("<HH", QE_ISVPRODID, QE_ISVSVN),
            bytes(60),
            binding + bytes(32),
        ]
    )


def certification_tail(attestation_key: Key, pck_key: Key, pem_chain: bytes) -> bytes:
    """Everything after the quote signature: it is the same for every quote of a platform."""
    report = qe_report(attestation_key)
    qe_data = b"".join(
        [
            report,
            sign_raw(pck_key, report),
            struct.pack("<H", len(QE_AUTH_DATA)),
            QE_AUTH_DATA,
            struct.pack("<HI", CERT_TYPE_PCK_CHAIN, len(pem_chain)),
            pem_chain,
        ]
    )
    return (
        raw_public_key(attestation_key)
        + struct.pack("<HI", CERT_TYPE_QE_REPORT, len(qe_data))
        + qe_data
    )


def quote_header(attestation_key: Key) -> bytes:
    """The 48-byte header; its user data starts with a QE id derived from the attestation key,
    as Intel's QE puts a platform-specific id there."""
    qe_id = hashlib.sha256(b"QE id/" + raw_public_key(attestation_key)).digest()[:16]
    return (
        struct.pack("<HHI", QUOTE_VERSION, ATTESTATION_KEY_TYPE_ECDSA_P256, TEE_TYPE_TDX)
        + bytes(4)
        + INTEL_QE_VENDOR_ID
        + qe_id
        + bytes(4)
    )


def encode_quote(
    header: bytes, report: TdReportFields, report_data: bytes, attestation_key: Key, tail: bytes
) -> bytes:
    """A signed v4 quote over ``report`` and ``report_data`` (64 bytes)."""
    if not isinstance(report_data, bytes) or len(report_data) != 64:
        size = len(report_data) if isinstance(report_data, bytes) else type(report_data).__name__
        raise SimulatedInputError(f"report_data: expected 64 bytes, got {size}")
    signed = header + report.encode(report_data)
    signature = sign_raw(attestation_key, signed)
    return signed + struct.pack("<I", len(signature) + len(tail)) + signature + tail
