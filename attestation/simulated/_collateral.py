"""Collateral for the simulated platform, in the JSON form dcap-qvl's QuoteCollateralV3 reads.

TCB info (Intel PCS v4 "TDX" v3) and QE identity ("TD_QE" v2) mirror Intel's documents field
for field; each is signed as its exact JSON text by the TCB signing key (r || s, hex). The
platform's own TCB level carries the chosen status; an UpToDate level above it (when that
status is not UpToDate) and an OutOfDate floor below it make the level list realistic, so a
quote with an older TDX module lands on the floor.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from attestation.simulated._pki import CPU_SVN, FMSPC, PCE_ID, PCE_SVN, Pki, sign_raw
from attestation.simulated._quote import (
    QE_ATTRIBUTES,
    QE_ISVPRODID,
    QE_ISVSVN,
    QE_MISCSELECT,
    QE_MRSIGNER,
)
from attestation.simulated.errors import SimulatedInputError

TCB_STATUSES = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
)
TCB_EVALUATION_DATA_NUMBER = 1
_TCB_DATE = "2025-01-01T00:00:00Z"
_FLOOR_TCB_DATE = "2020-01-01T00:00:00Z"
_QE_ATTRIBUTES_MASK = bytes.fromhex("FBFFFFFFFFFFFFFF0000000000000000")
_QE_IDENTITY_ATTRIBUTES = bytes(
    a & m for a, m in zip(QE_ATTRIBUTES, _QE_ATTRIBUTES_MASK, strict=True)
)
_TDX_MODULE_SIGNER = "00" * 48  # Intel signs the TDX module: MRSIGNERSEAM is zero


def build(
    pki: Pki,
    *,
    tee_tcb_svn: bytes,
    now: int,
    validity_days: int,
    tcb_status: str,
    qe_tcb_status: str,
    advisory_ids: Sequence[str],
    revoke_pck: bool,
) -> dict[str, str]:
    """The nine collateral fields, valid from ``now`` for ``validity_days``."""
    for name, status in (("tcb_status", tcb_status), ("qe_tcb_status", qe_tcb_status)):
        if status not in TCB_STATUSES:
            raise SimulatedInputError(f"{name}: {status!r} is not one of {', '.join(TCB_STATUSES)}")
    if validity_days <= 0:
        raise SimulatedInputError(f"validity_days: must be positive, got {validity_days}")
    if isinstance(advisory_ids, str) or not all(isinstance(i, str) for i in advisory_ids):
        raise SimulatedInputError("advisory_ids: expected a sequence of strings")
    next_update = now + validity_days * 86400
    dates = {"issueDate": _rfc3339(now), "nextUpdate": _rfc3339(next_update)}
    tcb_info = _json(
        {
            "id": "TDX",
            "version": 3,
            **dates,
            "fmspc": FMSPC.hex().upper(),
            "pceId": PCE_ID.hex().upper(),
            "tcbType": 0,
            "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
            "tdxModule": _module_signer(),
            "tdxModuleIdentities": [_module_identity(tee_tcb_svn)],
            "tcbLevels": _tcb_levels(tee_tcb_svn, tcb_status, list(advisory_ids)),
        }
    )
    qe_identity = _json(
        {
            "id": "TD_QE",
            "version": 2,
            **dates,
            "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
            "miscselect": QE_MISCSELECT.to_bytes(4, "little").hex().upper(),
            "miscselectMask": "FFFFFFFF",
            "attributes": _QE_IDENTITY_ATTRIBUTES.hex().upper(),
            "attributesMask": _QE_ATTRIBUTES_MASK.hex().upper(),
            "mrsigner": QE_MRSIGNER.hex().upper(),
            "isvprodid": QE_ISVPRODID,
            "tcbLevels": [_level({"isvsvn": QE_ISVSVN}, _TCB_DATE, qe_tcb_status)],
        }
    )
    signing_key = pki.keys["tcb-signing"]
    signing_chain = pki.chain_pem("tcb-signing").decode()
    return {
        "pck_crl_issuer_chain": pki.chain_pem("pck-ca").decode(),
        "root_ca_crl": pki.crl("root-ca", now, next_update).hex(),
        "pck_crl": pki.crl("pck-ca", now, next_update, ["pck"] if revoke_pck else []).hex(),
        "tcb_info_issuer_chain": signing_chain,
        "tcb_info": tcb_info,
        "tcb_info_signature": sign_raw(signing_key, tcb_info.encode()).hex(),
        "qe_identity_issuer_chain": signing_chain,
        "qe_identity": qe_identity,
        "qe_identity_signature": sign_raw(signing_key, qe_identity.encode()).hex(),
    }


def _tcb_levels(
    tee_tcb_svn: bytes, status: str, advisory_ids: list[str]
) -> list[dict[str, object]]:
    own = _level(_platform_tcb(PCE_SVN, CPU_SVN, tee_tcb_svn), _TCB_DATE, status, advisory_ids)
    floor = _level(_platform_tcb(0, bytes(16), bytes(16)), _FLOOR_TCB_DATE, "OutOfDate")
    if status == "UpToDate":
        return [own, floor]
    newer = _level(_platform_tcb(PCE_SVN + 1, CPU_SVN, tee_tcb_svn), _TCB_DATE, "UpToDate")
    return [newer, own, floor]


def _platform_tcb(pce_svn: int, cpu_svn: bytes, tee_tcb_svn: bytes) -> dict[str, object]:
    return {
        "sgxtcbcomponents": [{"svn": svn} for svn in cpu_svn],
        "pcesvn": pce_svn,
        "tdxtcbcomponents": [{"svn": svn} for svn in tee_tcb_svn],
    }


def _module_signer() -> dict[str, object]:
    return {"mrsigner": _TDX_MODULE_SIGNER, "attributes": "0" * 16, "attributesMask": "F" * 16}


def _module_identity(tee_tcb_svn: bytes) -> dict[str, object]:
    # dcap-qvl picks the identity "TDX_<major version>" (TEE_TCB_SVN[1]) and compares the
    # module SVN (TEE_TCB_SVN[0]) with its levels.
    return {
        "id": f"TDX_{tee_tcb_svn[1]:02X}",
        **_module_signer(),
        "tcbLevels": [
            _level({"isvsvn": tee_tcb_svn[0]}, _TCB_DATE, "UpToDate"),
            _level({"isvsvn": 0}, _FLOOR_TCB_DATE, "OutOfDate"),
        ],
    }


def _level(
    tcb: dict[str, object], date: str, status: str, advisory_ids: Sequence[str] = ()
) -> dict[str, object]:
    level: dict[str, object] = {"tcb": tcb, "tcbDate": date, "tcbStatus": status}
    if advisory_ids:
        level["advisoryIDs"] = list(advisory_ids)
    return level


def _rfc3339(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(document: dict[str, object]) -> str:
    return json.dumps(document, separators=(",", ":"))
