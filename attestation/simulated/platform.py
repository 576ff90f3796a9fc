"""A SIMULATED Intel TDX platform for development and tests, where no TDX hardware exists.

It plays Intel's role end to end: it owns a root CA, a PCK chain, a TCB signing key and a QE
attestation key; it emits byte-exact v4 quotes over chosen measurements and report data, and
signs the matching collateral. ``dcap_qvl.verify_with_root_ca(quote, collateral,
platform.root_ca_der, now)`` accepts those quotes through the same code that checks real
ones; Intel's root (``dcap_qvl.verify``) rejects them. Everything it makes says SIMULATED.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.simulated import _collateral, _state
from attestation.simulated._pki import (
    FMSPC,
    ROLES,
    Pki,
    derived_key,
    derived_serial,
    issue,
)
from attestation.simulated._quote import (
    TdReportFields,
    certification_tail,
    encode_quote,
    quote_header,
)
from attestation.simulated.errors import SimulatedInputError

SIMULATED: Final = True
"""Marks this module's quotes as simulated: they prove nothing about real hardware."""

_TD_FIELDS = frozenset(field.name for field in dataclasses.fields(TdReportFields))


class SimulatedPlatform:
    """A SIMULATED TDX platform: quotes, collateral and the root CA that verifies both.

    Make one with `open` (keys persisted in a state directory) or `ephemeral` (in memory,
    reproducible from a seed). ``measurements`` sets the default TD report fields of its
    quotes (any `TdReportFields` field: ``mrtd``, ``rtmr0`` .. ``rtmr3``, ...).
    """

    SIMULATED: ClassVar[bool] = True
    name: ClassVar[str] = "simulated-tdx"

    def __init__(self, pki: Pki, td_defaults: TdReportFields) -> None:
        self._pki = pki
        self._td = td_defaults
        # Only the TD report and its signature differ between quotes of one platform.
        self._attestation_key = pki.keys["attestation"]
        self._header = quote_header(self._attestation_key)
        self._tail = certification_tail(
            self._attestation_key, pki.keys["pck"], pki.chain_pem("pck")
        )

    @classmethod
    def open(
        cls, state_dir: Path | str, *, measurements: Mapping[str, bytes] | None = None
    ) -> SimulatedPlatform:
        """The platform whose keys live in ``state_dir``, created there on first use."""
        return cls(_state.load_or_create(Path(state_dir)), _td_defaults(measurements))

    @classmethod
    def ephemeral(
        cls, seed: int | None = None, *, measurements: Mapping[str, bytes] | None = None
    ) -> SimulatedPlatform:
        """An in-memory platform; with a ``seed`` its keys, certificates and quotes are
        reproducible byte for byte, without one its keys are random."""
        if seed is None:
            keys = {role: ec.generate_private_key(ec.SECP256R1()) for role in ROLES}
            pki = issue(keys, lambda _role: x509.random_serial_number())
        else:
            if not isinstance(seed, int):
                raise SimulatedInputError(f"seed: expected an int, got {type(seed).__name__}")
            keys = {role: derived_key(seed, role) for role in ROLES}
            pki = issue(keys, lambda role: derived_serial(seed, role))
        return cls(pki, _td_defaults(measurements))

    @property
    def root_ca_der(self) -> bytes:
        """The simulated root CA certificate (DER): the trust anchor for its quotes."""
        return self._pki.certs["root-ca"].public_bytes(serialization.Encoding.DER)

    @property
    def root_ca_pem(self) -> bytes:
        return self._pki.certs["root-ca"].public_bytes(serialization.Encoding.PEM)

    @property
    def pck_chain_pem(self) -> bytes:
        """The PEM chain every quote carries: PCK certificate, PCK CA, root CA."""
        return self._pki.chain_pem("pck")

    @property
    def fmspc(self) -> bytes:
        return FMSPC

    @property
    def ppid(self) -> bytes:
        return self._pki.ppid

    @property
    def td_defaults(self) -> TdReportFields:
        """The TD report fields of `get_quote` and the defaults of `quote`."""
        return self._td

    def get_quote(self, report_data: bytes) -> bytes:
        """A quote over ``report_data`` with the default measurements (quote provider API)."""
        return self._encode(self._td, report_data)

    def quote(
        self,
        report_data: bytes,
        *,
        mrtd: bytes | None = None,
        rtmr0: bytes | None = None,
        rtmr1: bytes | None = None,
        rtmr2: bytes | None = None,
        rtmr3: bytes | None = None,
        rtmrs: Sequence[bytes] | None = None,
        td_attributes: bytes | None = None,
        xfam: bytes | None = None,
        mrconfigid: bytes | None = None,
        mrowner: bytes | None = None,
        mrownerconfig: bytes | None = None,
        tee_tcb_svn: bytes | None = None,
        mrseam: bytes | None = None,
        mrsignerseam: bytes | None = None,
        seam_attributes: bytes | None = None,
    ) -> bytes:
        """A v4 quote over ``report_data`` (64 bytes); unset fields take `td_defaults`.

        ``rtmrs`` sets RTMR0..RTMR3 at once and excludes the single ``rtmrN`` arguments.
        """
        changes = {
            "mrtd": mrtd,
            "rtmr0": rtmr0,
            "rtmr1": rtmr1,
            "rtmr2": rtmr2,
            "rtmr3": rtmr3,
            "td_attributes": td_attributes,
            "xfam": xfam,
            "mrconfigid": mrconfigid,
            "mrowner": mrowner,
            "mrownerconfig": mrownerconfig,
            "tee_tcb_svn": tee_tcb_svn,
            "mrseam": mrseam,
            "mrsignerseam": mrsignerseam,
            "seam_attributes": seam_attributes,
        }
        if rtmrs is not None:
            if any(changes[f"rtmr{i}"] is not None for i in range(4)):
                raise SimulatedInputError("rtmrs: cannot be combined with rtmr0..rtmr3")
            if len(rtmrs) != 4:
                raise SimulatedInputError(f"rtmrs: expected 4 registers, got {len(rtmrs)}")
            changes.update({f"rtmr{i}": value for i, value in enumerate(rtmrs)})
        report = dataclasses.replace(
            self._td, **{name: value for name, value in changes.items() if value is not None}
        )
        return self._encode(report, report_data)

    def _encode(self, report: TdReportFields, report_data: bytes) -> bytes:
        return encode_quote(self._header, report, report_data, self._attestation_key, self._tail)

    def collateral(
        self,
        now: int,
        *,
        tcb_status: str = "UpToDate",
        qe_tcb_status: str = "UpToDate",
        validity_days: int = 30,
        advisory_ids: Sequence[str] = (),
        revoke_pck: bool = False,
    ) -> dict[str, str]:
        """Collateral issued at ``now`` (Unix seconds), valid for ``validity_days``: it
        verifies at times in ``[now, now + validity_days * 86400)``.

        ``tcb_status`` and ``advisory_ids`` describe this platform's TCB level and
        ``qe_tcb_status`` its quoting enclave's; ``revoke_pck`` lists the PCK certificate in
        the PCK CRL. The keys are those of dcap-qvl's ``QuoteCollateralV3`` JSON.
        """
        if not isinstance(now, int) or now < 0:
            raise SimulatedInputError(
                f"now: expected Unix seconds as a non-negative int, got {now!r}"
            )
        return _collateral.build(
            self._pki,
            tee_tcb_svn=self._td.tee_tcb_svn,
            now=now,
            validity_days=validity_days,
            tcb_status=tcb_status,
            qe_tcb_status=qe_tcb_status,
            advisory_ids=advisory_ids,
            revoke_pck=revoke_pck,
        )

    def collateral_json(
        self,
        now: int,
        *,
        tcb_status: str = "UpToDate",
        qe_tcb_status: str = "UpToDate",
        validity_days: int = 30,
        advisory_ids: Sequence[str] = (),
        revoke_pck: bool = False,
    ) -> str:
        """`collateral` as the JSON text ``dcap_qvl.QuoteCollateralV3.from_json`` reads."""
        return json.dumps(
            self.collateral(
                now,
                tcb_status=tcb_status,
                qe_tcb_status=qe_tcb_status,
                validity_days=validity_days,
                advisory_ids=advisory_ids,
                revoke_pck=revoke_pck,
            )
        )

    def __repr__(self) -> str:
        return f"SimulatedPlatform(SIMULATED, root={self._pki.certs['root-ca'].serial_number:x})"


def _td_defaults(measurements: Mapping[str, bytes] | None) -> TdReportFields:
    changes = dict(measurements or {})
    unknown = sorted(set(changes) - _TD_FIELDS)
    if unknown:
        known = ", ".join(sorted(_TD_FIELDS))
        raise SimulatedInputError(
            f"measurements: unknown field(s) {', '.join(unknown)}; known: {known}"
        )
    return TdReportFields(**changes)
