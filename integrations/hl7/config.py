"""Where the HL7 interface is configured: environment for endpoints, a YAML file for mappings.

Each hospital's HIS differs in codes and in where it puts things, so the mapping of HIS
item codes to our treatment items, of wards to departments, of doctors to users, and the
place payment status is read from are data (`BEDSIDE_HL7_MAPPING_FILE`), not code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings, SettingsConfigDict

PAYMENT_SOURCES = ("orc25", "ft1", "zsegment")


class HL7Settings(BaseSettings):
    """Every `BEDSIDE_HL7_*` variable (the README lists them with their defaults)."""

    model_config = SettingsConfigDict(env_prefix="BEDSIDE_HL7_", extra="ignore")

    # The listener's address: loopback by default, `0.0.0.0` (or the interface the HIS
    # integration platform reaches) in production.
    host: str = "127.0.0.1"
    port: int = 2575
    # Our own name in MSH-3/MSH-4 of what we send and acknowledge.
    application: str = "BEDSIDE"
    facility: str = "BEDSIDE"
    mapping_file: Path | None = None
    # A frame larger than this closes the connection: nothing legitimate is that big.
    max_frame_bytes: int = 1024 * 1024
    # A connection silent for this long is closed (keep-alive between messages is normal).
    idle_timeout_seconds: float = 600.0
    # The HIS endpoint our appointments go to (SIU^S12/S14/S15); unset keeps them queued.
    his_host: str | None = None
    his_port: int | None = None
    his_application: str = "HIS"
    his_facility: str = "HOSPITAL"
    # A DFT^P03 charge per performed (archived) session goes to the HIS with the SIU.
    send_charges: bool = True
    # The archived record to the EMR: "mdm" (MDM^T02 document), "oru" (ORU^R01), "none".
    send_records: str = "mdm"
    send_timeout_seconds: float = 10.0
    send_batch: int = 50
    retry_max_seconds: int = 600


@dataclass
class PaymentSource:
    """Where a DFT/ORM carries payment status and how its values read.

    `sources` are all read, in any message that may carry them (ORM, OMG, DFT); the older
    single `source:` key of the mapping file is read as a one-element list.
    """

    sources: tuple[str, ...] = ("orc25", "ft1")  # of orc25 | ft1 | zsegment
    z_segment: str = "ZPY"
    z_field: int = 2
    # HIS value (upper case) -> our payment status
    values: dict[str, str] = field(
        default_factory=lambda: {
            "PAID": "paid",
            "PY": "paid",
            "Y": "paid",
            "1": "paid",
            "已收费": "paid",
            "已缴费": "paid",
            "REFUNDED": "refunded",
            "RF": "refunded",
            "R": "refunded",
            "2": "refunded",
            "已退费": "refunded",
            "UNPAID": "unpaid",
            "N": "unpaid",
            "0": "unpaid",
            "未收费": "unpaid",
        }
    )
    # FT1-6 transaction types: a payment row and a refund row
    ft1_payment_types: tuple[str, ...] = ("PY",)
    ft1_refund_types: tuple[str, ...] = ("RF", "CR")


@dataclass
class HL7Mapping:
    item_codes: dict[str, str] = field(
        default_factory=dict
    )  # HIS charge/order code -> TreatmentItem.code
    departments: dict[str, str] = field(default_factory=dict)  # HIS ward/service -> Department.code
    doctors: dict[str, str] = field(default_factory=dict)  # HIS doctor id -> User.username
    payment: PaymentSource = field(default_factory=PaymentSource)
    accepted_versions: tuple[str, ...] = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
    accepted_processing_ids: tuple[str, ...] = ("P", "T")
    # Which PID-3 repetition is our record number: rules in order of preference, each
    # `TYPE` (CX-5 identifier type code) or `TYPE@AUTHORITY` (CX-4.1 assigning authority);
    # the first rule any repetition matches wins, whatever order the HIS sends them in.
    mrn_identifier_types: tuple[str, ...] = ("MR", "PI", "PT", "")
    id_number_identifier_types: tuple[str, ...] = ("NNCHN", "NI", "ID", "SS")
    default_charset: str = "utf-8"
    # Tried when nothing is declared in MSH-18 and the default does not decode.
    fallback_charsets: tuple[str, ...] = ("gb18030",)
    # ADT trigger -> process definition key started by it (e.g. A03: a discharge follow-up).
    adt_processes: dict[str, str] = field(default_factory=dict)
    # OBX-8 abnormal flags (table 0078) that make an ORU^R01 result a critical value (危急值).
    critical_flags: tuple[str, ...] = ("HH", "LL", "AA")
    # An order (ORM/OMG) for a patient the archive does not have yet, carrying a PID with
    # a record number and a name, creates the patient (outpatients often get no ADT^A04).
    create_patients_from_orders: bool = True
    # ADT triggers that need nothing from us: answered AA and not applied. Empty: AR 201.
    ignored_adt_triggers: tuple[str, ...] = (
        "A02",  # transfer
        "A03",  # discharge
        "A05",  # pre-admit
        "A06",  # outpatient to inpatient
        "A07",  # inpatient to outpatient
        "A11",  # cancel admit
        "A12",  # cancel transfer
        "A13",  # cancel discharge
        "A31",  # update person information (person registry)
        "A40",  # merge patient
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HL7Mapping:
        raw_payment = dict(data.get("payment") or {})
        if "source" in raw_payment:
            raw_payment.setdefault("sources", [raw_payment.pop("source")])
        if isinstance(raw_payment.get("sources"), str):
            raw_payment["sources"] = [raw_payment["sources"]]
        payment = PaymentSource(**raw_payment)
        payment.sources = tuple(str(v) for v in payment.sources)
        for source in payment.sources:
            if source not in PAYMENT_SOURCES:
                raise ValueError(f"payment.sources must be of {PAYMENT_SOURCES}, not {source!r}")
        payment.values = {str(k).upper(): str(v) for k, v in payment.values.items()}
        payment.ft1_payment_types = tuple(payment.ft1_payment_types)
        payment.ft1_refund_types = tuple(payment.ft1_refund_types)
        simple = {k: v for k, v in data.items() if k != "payment"}
        for key in (
            "accepted_versions",
            "accepted_processing_ids",
            "mrn_identifier_types",
            "id_number_identifier_types",
            "fallback_charsets",
            "ignored_adt_triggers",
            "critical_flags",
        ):
            if key in simple:
                simple[key] = tuple(str(v) for v in simple[key])
        for key in ("item_codes", "departments", "doctors", "adt_processes"):
            if key in simple:
                simple[key] = {str(k): str(v) for k, v in (simple[key] or {}).items()}
        return cls(payment=payment, **simple)

    @classmethod
    def load(cls, path: Path | None) -> HL7Mapping:
        if path is None:
            return cls()
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the HL7 mapping must be a YAML mapping")
        return cls.from_dict(data)


@dataclass
class HL7Config:
    settings: HL7Settings
    mapping: HL7Mapping

    @classmethod
    def load(cls, settings: HL7Settings | None = None) -> HL7Config:
        settings = settings or HL7Settings()
        return cls(settings=settings, mapping=HL7Mapping.load(settings.mapping_file))
