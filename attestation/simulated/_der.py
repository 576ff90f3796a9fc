"""The Intel SGX extension of a (simulated) PCK certificate, encoded as ASN.1 DER.

`cryptography` writes the certificate but has no general DER encoder, and the extension
needs only five primitive types, so they are encoded here. Layout (the one dcap-qvl and
Intel's PCK certificates use): a SEQUENCE of (OID, value) pairs under 1.2.840.113741.1.13.1:

    .1 PPID OCTET STRING(16)          .2 TCB SEQUENCE{ .2.1-.2.16 comp SVN INTEGER,
    .3 PCE-ID OCTET STRING(2)                         .2.17 PCESVN INTEGER,
    .4 FMSPC OCTET STRING(6)                          .2.18 CPUSVN OCTET STRING(16) }
    .5 SGX type ENUMERATED            .6 platform instance id OCTET STRING(16)
    .7 configuration SEQUENCE{ .7.1 dynamic platform, .7.2 cached keys, .7.3 SMT: BOOLEAN }
"""

from __future__ import annotations

SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"

_SEQUENCE = 0x30
_BOOLEAN = 0x01
_INTEGER = 0x02
_OCTET_STRING = 0x04
_OID = 0x06
_ENUMERATED = 0x0A


def _tlv(tag: int, value: bytes) -> bytes:
    size = len(value)
    if size < 0x80:
        return bytes([tag, size]) + value
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + value


def _unsigned(value: int) -> bytes:
    # DER INTEGER content: minimal two's complement, so a set top bit needs a leading zero.
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def _oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _tlv(_OID, bytes(body))


def _entry(suffix: str, value: bytes) -> bytes:
    return _tlv(_SEQUENCE, _oid(f"{SGX_EXTENSION_OID}.{suffix}") + value)


def sgx_extension(
    *,
    ppid: bytes,
    cpu_svn: bytes,
    pce_svn: int,
    pce_id: bytes,
    fmspc: bytes,
    sgx_type: int,
    platform_instance_id: bytes,
    dynamic_platform: bool,
    cached_keys: bool,
    smt_enabled: bool,
) -> bytes:
    """The DER value of the SGX extension; ``cpu_svn`` holds the 16 TCB component SVNs."""
    components = [
        _entry(f"2.{i + 1}", _tlv(_INTEGER, _unsigned(svn))) for i, svn in enumerate(cpu_svn)
    ]
    tcb = b"".join(
        [
            *components,
            _entry("2.17", _tlv(_INTEGER, _unsigned(pce_svn))),
            _entry("2.18", _tlv(_OCTET_STRING, cpu_svn)),
        ]
    )
    flags = b"".join(
        _entry(f"7.{i + 1}", _tlv(_BOOLEAN, b"\xff" if flag else b"\x00"))
        for i, flag in enumerate((dynamic_platform, cached_keys, smt_enabled))
    )
    return _tlv(
        _SEQUENCE,
        b"".join(
            [
                _entry("1", _tlv(_OCTET_STRING, ppid)),
                _entry("2", _tlv(_SEQUENCE, tcb)),
                _entry("3", _tlv(_OCTET_STRING, pce_id)),
                _entry("4", _tlv(_OCTET_STRING, fmspc)),
                _entry("5", _tlv(_ENUMERATED, _unsigned(sgx_type))),
                _entry("6", _tlv(_OCTET_STRING, platform_instance_id)),
                _entry("7", _tlv(_SEQUENCE, flags)),
            ]
        ),
    )
