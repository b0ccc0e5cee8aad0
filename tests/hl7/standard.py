"""HL7 v2 messages as a HIS sends them, built with hl7apy's element model from the standard.

Nothing here comes from `integrations.hl7`: the messages are built from the HL7 v2.5
message structures and field definitions (hl7apy's `v2_5` tables are those definitions,
and each field set below names its position and definition), so a test that passes says
the listener reads what the standard says, not what our parser happens to read.

Structures used (HL7 v2.5):
- ADT_A01 (ch. 3 §3.3.1): MSH EVN PID PV1 AL1
- ORM_O01 (ch. 4 §4.4.1): MSH PATIENT(PID PATIENT_VISIT(PV1)) ORDER(ORC ORDER_DETAIL(OBR) FT1)
- OMG_O19 (ch. 4 §4.4.8): MSH PATIENT(PID PATIENT_VISIT(PV1)) ORDER(ORC TIMING(TQ1) OBR FT1)
- DFT_P03 (ch. 6 §6.4.1): MSH EVN PID PV1 COMMON_ORDER(ORC) FINANCIAL(FT1 FINANCIAL_COMMON_ORDER(ORC))
- SIU_S12 (ch. 10 §10.3.1): MSH SCH PATIENT(PID) RESOURCES(RGS SERVICE(AIS))
Acknowledgements are read with hl7apy's parser at STRICT validation (ch. 2 §2.14.1 ACK).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Field, Message, Segment
from hl7apy.parser import parse_message

SENT_AT = "20250301093000+0800"
CODECS = {"UNICODE UTF-8": "utf-8", "GB 18030-2000": "gb18030"}


@dataclass
class Identifier:
    """One PID-3 repetition (CX)."""

    value: str
    kind: str  # CX-5 Identifier Type Code (table 0203)
    authority: str = "HOSP"  # CX-4.1 Assigning Authority, namespace id


@dataclass
class Phone:
    """One PID-13 repetition (XTN)."""

    use: str  # XTN-2 Telecommunication Use Code (table 0201): PRN, WPN, ORN
    equipment: str  # XTN-3 Telecommunication Equipment Type (table 0202): PH, CP, FX
    country: str = ""  # XTN-5 Country Code
    area: str = ""  # XTN-6 Area/City Code
    local: str = ""  # XTN-7 Local Number
    unformatted: str = ""  # XTN-12 Unformatted Telephone Number


@dataclass
class Person:
    mrn: str = "P0001"
    family: str = "周"
    given: str = "建国"
    birth: str = "19620314"
    gender: str = "M"
    identifiers: list[Identifier] | None = None
    phones: list[Phone] = field(default_factory=list)
    address: dict[str, str] | None = None  # XAD component name -> value


def message(
    structure: str,
    event: str,
    control_id: str,
    *,
    version: str = "2.5",
    charset: str = "UNICODE UTF-8",
    accept_ack: str = "",
    application_ack: str = "",
    processing: str = "P",
) -> Message:
    m = Message(structure, version=version)
    msh = m.msh
    msh.msh_3.hd_1 = "HIS"  # MSH-3 Sending Application
    msh.msh_4.hd_1 = "HOSP"  # MSH-4 Sending Facility
    msh.msh_5.hd_1 = "BEDSIDE"  # MSH-5 Receiving Application
    msh.msh_6.hd_1 = "HOSP"  # MSH-6 Receiving Facility
    msh.msh_7 = SENT_AT  # MSH-7 Date/Time Of Message
    msh.msh_9.msg_1 = (
        structure.split("_")[0] if structure != "ACK" else "ACK"
    )  # MSH-9.1 Message Code
    msh.msh_9.msg_2 = event  # MSH-9.2 Trigger Event
    msh.msh_9.msg_3 = structure  # MSH-9.3 Message Structure
    msh.msh_10 = control_id  # MSH-10 Message Control ID
    msh.msh_11.pt_1 = processing  # MSH-11 Processing ID
    msh.msh_12.vid_1 = version  # MSH-12 Version ID
    if accept_ack:
        msh.msh_15 = accept_ack  # MSH-15 Accept Acknowledgment Type (table 0155)
    if application_ack:
        msh.msh_16 = application_ack  # MSH-16 Application Acknowledgment Type (table 0155)
    msh.msh_18 = charset  # MSH-18 Character Set (table 0211)
    return m


def fill_pid(pid: Segment, person: Person) -> None:
    pid.pid_1 = "1"  # PID-1 Set ID - PID
    identifiers = person.identifiers or [Identifier(person.mrn, "MR")]
    for n, ident in enumerate(identifiers):
        cx = pid.pid_3 if n == 0 else Field("PID_3", version=pid.version)
        cx.cx_1 = ident.value  # PID-3.1 (CX-1) ID Number
        cx.cx_4.hd_1 = ident.authority  # PID-3.4 (CX-4) Assigning Authority
        cx.cx_5 = ident.kind  # PID-3.5 (CX-5) Identifier Type Code
        if n:
            pid.add(cx)
    pid.pid_5.xpn_1.fn_1 = person.family  # PID-5.1 (XPN-1.1) Family Name, Surname
    pid.pid_5.xpn_2 = person.given  # PID-5.2 (XPN-2) Given Name
    pid.pid_5.xpn_7 = "L"  # PID-5.7 (XPN-7) Name Type Code: legal
    pid.pid_7.ts_1 = person.birth  # PID-7 Date/Time of Birth
    pid.pid_8 = person.gender  # PID-8 Administrative Sex (table 0001)
    if person.address:
        for component, value in person.address.items():
            # PID-11 Patient Address (XAD): xad_1 street (SAD-1), xad_3 city,
            # xad_4 state or province, xad_5 zip, xad_6 country, xad_7 type, xad_9 county
            if component == "xad_1":
                pid.pid_11.xad_1.sad_1 = value
            else:
                setattr(pid.pid_11, component, value)
    for n, phone in enumerate(person.phones):
        xtn = pid.pid_13 if n == 0 else Field("PID_13", version=pid.version)
        xtn.xtn_2 = phone.use  # PID-13.2 (XTN-2) Telecommunication Use Code
        xtn.xtn_3 = phone.equipment  # PID-13.3 (XTN-3) Telecommunication Equipment Type
        for name, value in (
            ("xtn_5", phone.country),  # XTN-5 Country Code
            ("xtn_6", phone.area),  # XTN-6 Area/City Code
            ("xtn_7", phone.local),  # XTN-7 Local Number
            ("xtn_12", phone.unformatted),  # XTN-12 Unformatted Telephone Number
        ):
            if value:
                setattr(xtn, name, value)
        if n:
            pid.add(xtn)


def fill_pv1(pv1: Segment, ward: str = "0301", patient_class: str = "O") -> None:
    pv1.pv1_1 = "1"  # PV1-1 Set ID - PV1
    pv1.pv1_2 = patient_class  # PV1-2 Patient Class (table 0004): O outpatient, I inpatient
    pv1.pv1_3.pl_1 = ward  # PV1-3.1 Assigned Patient Location, Point of Care (ward)


def adt(
    trigger: str,
    control_id: str,
    person: Person | None = None,
    *,
    ward: str = "0301",
    charset: str = "UNICODE UTF-8",
    version: str = "2.5",
    allergies: tuple[str, ...] = (),
    accept_ack: str = "",
    application_ack: str = "",
    attending: str = "D2001",
) -> Message:
    person = person or Person()
    m = message(
        "ADT_A01",
        trigger,
        control_id,
        version=version,
        charset=charset,
        accept_ack=accept_ack,
        application_ack=application_ack,
    )
    m.evn.evn_1 = trigger  # EVN-1 Event Type Code
    m.evn.evn_2.ts_1 = SENT_AT  # EVN-2 Recorded Date/Time
    fill_pid(m.pid, person)
    fill_pv1(m.pv1, ward, "I")
    m.pv1.pv1_7.xcn_1 = attending  # PV1-7 Attending Doctor (XCN-1 ID number)
    for n, allergen in enumerate(allergies, start=1):
        al1 = m.add_segment("AL1")
        al1.al1_1 = str(n)  # AL1-1 Set ID - AL1
        al1.al1_2.ce_1 = "DA"  # AL1-2 Allergen Type Code (table 0127): drug allergy
        al1.al1_3.ce_2 = allergen  # AL1-3.2 Allergen Code/Mnemonic/Description, text
    return m


@dataclass
class Order:
    """One order group: ORC + OBR (+ TQ1 in OMG) + FT1 rows."""

    number: str  # ORC-2 Placer Order Number
    control: str = "NW"  # ORC-1 Order Control (table 0119)
    item: str = "KF-PT-01"  # OBR-4.1 Universal Service Identifier
    item_text: str = "物理治疗"  # OBR-4.2
    total: str = ""  # TQ1-14 Total Occurrences (OMG, v2.5) or ORC-7.12 TQ.12 (v2.4)
    per_occurrence: str = "1"  # TQ1-2 Quantity, or ORC-7.1 TQ.1
    repeat: str = "QD"  # TQ1-3 Repeat Pattern / ORC-7.2 TQ.2 Interval (table 0335)
    duration: str = ""  # ORC-7.3 TQ.3 Duration, e.g. X10 (ten times)
    status: str = ""  # ORC-5 Order Status (table 0038)
    status_modifier: str = ""  # ORC-25 Order Status Modifier (CWE-1)
    reason: str = ""  # ORC-16.2 Order Control Code Reason, text
    payments: list[str] = field(default_factory=list)  # FT1-6 Transaction Type per FT1 row


def fill_orc(orc: Segment, order: Order, *, timing_in_orc: bool) -> None:
    orc.orc_1 = order.control  # ORC-1 Order Control
    orc.orc_2.ei_1 = order.number  # ORC-2.1 Placer Order Number, entity identifier
    orc.orc_2.ei_2 = "HIS"  # ORC-2.2 namespace id
    if order.status:
        orc.orc_5 = order.status  # ORC-5 Order Status
    if timing_in_orc:
        orc.orc_7.tq_1 = order.per_occurrence  # ORC-7.1 TQ.1 Quantity
        orc.orc_7.tq_2 = order.repeat  # ORC-7.2 TQ.2 Interval, repeat pattern
        if order.duration:
            orc.orc_7.tq_3 = order.duration  # ORC-7.3 TQ.3 Duration
        if order.total and orc.version != "2.5":
            orc.orc_7.tq_12 = order.total  # ORC-7.12 TQ.12 Total Occurrences (v2.4)
    orc.orc_9.ts_1 = SENT_AT  # ORC-9 Date/Time of Transaction
    orc.orc_12.xcn_1 = "D1001"  # ORC-12.1 Ordering Provider, ID number
    orc.orc_12.xcn_2.fn_1 = "李"  # ORC-12.2 family name
    orc.orc_12.xcn_3 = "明"  # ORC-12.3 given name
    if order.reason:
        orc.orc_16.ce_2 = order.reason  # ORC-16.2 Order Control Code Reason
    if order.status_modifier:
        orc.orc_25.cwe_1 = order.status_modifier  # ORC-25.1 Order Status Modifier


def fill_obr(obr: Segment, order: Order) -> None:
    obr.obr_1 = "1"  # OBR-1 Set ID - OBR
    obr.obr_2.ei_1 = order.number  # OBR-2 Placer Order Number
    obr.obr_4.ce_1 = order.item  # OBR-4.1 Universal Service Identifier, identifier
    obr.obr_4.ce_2 = order.item_text  # OBR-4.2 text
    obr.obr_4.ce_3 = "L"  # OBR-4.3 name of coding system: local


def fill_ft1(ft1: Segment, n: int, kind: str, number: str, *, amount: str = "60.00") -> None:
    ft1.ft1_1 = str(n)  # FT1-1 Set ID - FT1
    ft1.ft1_2 = f"{number}-{n}"  # FT1-2 Transaction ID
    ft1.ft1_4.dr_1.ts_1 = "20250301"  # FT1-4 Transaction Date (DR-1 range start)
    ft1.ft1_6 = kind  # FT1-6 Transaction Type (table 0017): CG charge, PY payment, RF refund
    ft1.ft1_7.ce_1 = "KF-PT-01"  # FT1-7 Transaction Code
    ft1.ft1_7.ce_2 = "物理治疗"
    ft1.ft1_10 = "1"  # FT1-10 Transaction Quantity
    ft1.ft1_11.cp_1.mo_1 = amount  # FT1-11 Transaction Amount - Extended (CP-1 MO-1)


def orm(
    control_id: str,
    orders: list[Order],
    person: Person | None = None,
    *,
    version: str = "2.5",
    charset: str = "UNICODE UTF-8",
) -> Message:
    """ORM^O01: ORC-7 (TQ) carries the timing; FT1 rows sit in the ORDER group."""
    m = message("ORM_O01", "O01", control_id, version=version, charset=charset)
    patient = m.add_group("ORM_O01_PATIENT")
    fill_pid(patient.pid, person or Person())
    visit = patient.add_group("ORM_O01_PATIENT_VISIT")
    fill_pv1(visit.pv1)
    for order in orders:
        group = m.add_group("ORM_O01_ORDER")
        fill_orc(group.orc, order, timing_in_orc=True)
        if order.control == "NW":
            detail = group.add_group("ORM_O01_ORDER_DETAIL")
            # the OBR/RQD/RQ1/RXO/ODS/ODT choice: its group name differs by version
            choice_name = (
                "ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP" if version == "2.5" else "ORM_O01_CHOICE"
            )
            choice = detail.add_group(choice_name)
            fill_obr(choice.add_segment("OBR"), order)
        for n, kind in enumerate(order.payments, start=1):
            fill_ft1(group.add_segment("FT1"), n, kind, order.number)
    return m


def omg(
    control_id: str,
    orders: list[Order],
    person: Person | None = None,
    *,
    charset: str = "UNICODE UTF-8",
) -> Message:
    """OMG^O19 (v2.5): TQ1 carries the timing; FT1 rows sit in the ORDER group."""
    m = message("OMG_O19", "O19", control_id, charset=charset)
    patient = m.add_group("OMG_O19_PATIENT")
    fill_pid(patient.pid, person or Person())
    visit = patient.add_group("OMG_O19_PATIENT_VISIT")
    fill_pv1(visit.pv1)
    for order in orders:
        group = m.add_group("OMG_O19_ORDER")
        fill_orc(group.orc, order, timing_in_orc=False)
        timing = group.add_group("OMG_O19_TIMING")
        tq1 = timing.tq1
        tq1.tq1_1 = "1"  # TQ1-1 Set ID - TQ1
        tq1.tq1_2.cq_1 = order.per_occurrence  # TQ1-2 Quantity (per occurrence)
        tq1.tq1_3.rpt_1.cwe_1 = order.repeat  # TQ1-3 Repeat Pattern (RPT-1, table 0335)
        tq1.tq1_7.ts_1 = "20250302080000+0800"  # TQ1-7 Start date/time
        if order.total:
            tq1.tq1_14 = order.total  # TQ1-14 Total Occurrences
        fill_obr(group.obr, order)
        for n, kind in enumerate(order.payments, start=1):
            fill_ft1(group.add_segment("FT1"), n, kind, order.number)
    return m


@dataclass
class Charge:
    """One FINANCIAL group of DFT^P03."""

    kind: str  # FT1-6 Transaction Type
    filler_number: str = ""  # FT1-23 Filler Order Number (EI-1)
    placer_number: str = ""  # ORC-2 of the group's FINANCIAL_COMMON_ORDER


def dft(
    control_id: str,
    charges: list[Charge],
    person: Person | None = None,
    *,
    order_number: str = "",
    charset: str = "UNICODE UTF-8",
) -> Message:
    """DFT^P03; `order_number` goes in the message's COMMON_ORDER ORC-2."""
    m = message("DFT_P03", "P03", control_id, charset=charset)
    m.evn.evn_1 = "P03"  # EVN-1 Event Type Code
    m.evn.evn_2.ts_1 = SENT_AT  # EVN-2 Recorded Date/Time
    fill_pid(m.pid, person or Person())
    fill_pv1(m.pv1)
    if order_number:
        common = m.add_group("DFT_P03_COMMON_ORDER")
        common.orc.orc_1 = "NW"  # ORC-1 Order Control (required in ORC)
        common.orc.orc_2.ei_1 = order_number  # ORC-2 Placer Order Number
    for n, charge in enumerate(charges, start=1):
        financial = m.add_group("DFT_P03_FINANCIAL")
        fill_ft1(financial.ft1, n, charge.kind, control_id)
        if charge.filler_number:
            financial.ft1.ft1_23.ei_1 = charge.filler_number  # FT1-23 Filler Order Number
        if charge.placer_number:
            own = financial.add_group("DFT_P03_FINANCIAL_COMMON_ORDER")
            own.orc.orc_1 = "NW"  # ORC-1 Order Control
            own.orc.orc_2.ei_1 = charge.placer_number  # ORC-2 Placer Order Number
    return m


def siu(
    trigger: str,
    control_id: str,
    his_appointment: str,
    *,
    start: str,
    order_no: str = "",
    person: Person | None = None,
) -> Message:
    m = message("SIU_S12", trigger, control_id)
    sch = m.sch
    sch.sch_1.ei_1 = his_appointment  # SCH-1 Placer Appointment ID
    sch.sch_1.ei_2 = "HIS"
    sch.sch_6.ce_2 = "患者改期" if trigger == "S15" else "复诊"  # SCH-6 Event Reason
    sch.sch_11.tq_4.ts_1 = start  # SCH-11.4 Appointment Timing Quantity, start date/time
    sch.sch_25.ce_1 = "Booked" if trigger == "S12" else "Cancelled"  # SCH-25 Filler Status Code
    if order_no:
        sch.sch_26.ei_1 = order_no  # SCH-26 Placer Order Number
    patient = m.add_group("SIU_S12_PATIENT")
    fill_pid(patient.pid, person or Person())
    resources = m.add_group("SIU_S12_RESOURCES")
    resources.rgs.rgs_1 = "1"  # RGS-1 Set ID - RGS
    service = resources.add_group("SIU_S12_SERVICE")
    ais = service.ais
    ais.ais_1 = "1"  # AIS-1 Set ID - AIS
    ais.ais_3.ce_1 = "KF-PT-01"  # AIS-3 Universal Service Identifier
    ais.ais_3.ce_2 = "物理治疗"
    ais.ais_4.ts_1 = start  # AIS-4 Start Date/Time
    ais.ais_7 = "30"  # AIS-7 Duration
    ais.ais_8.ce_1 = "min"  # AIS-8 Duration Units
    return m


def encode(m: Message) -> bytes:
    """ER7 with `\\r` between segments, in the character set MSH-18 declares."""
    charset = m.msh.msh_18.value if m.msh.msh_18 else "UNICODE UTF-8"
    return m.to_er7().encode(CODECS[charset])


@dataclass
class Ack:
    code: str  # MSA-1 Acknowledgment Code
    control_id: str  # MSA-2 Message Control ID
    text: str  # MSA-3 Text Message
    err_code: str  # ERR-3.1 HL7 Error Code (table 0357)
    err_text: str  # ERR-8 User Message
    message_control_id: str  # the ACK's own MSH-10
    charset: str  # the ACK's MSH-18


def read_ack(raw: bytes, codec: str = "utf-8") -> Ack:
    """An acknowledgement, parsed by hl7apy at STRICT validation against ACK (v2.5 §2.14.1)."""
    text = raw.decode(codec)
    version = text.split("\r", 1)[0].split("|")[11].split("^")[0]
    ack = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, force_validation=True)
    assert ack.msh.msh_12.to_er7().split("^")[0] == version
    err = ack.err if ack.children.get("ERR") else None
    err_code, err_text = "", ""
    if err is not None:
        err_code = err.err_3.to_er7().split("^")[0]
        err_text = err.err_8.value if err.err_8 else ""
    return Ack(
        code=ack.msa.msa_1.value,
        control_id=ack.msa.msa_2.value,
        text=ack.msa.msa_3.value if ack.msa.msa_3 else "",
        err_code=err_code,
        err_text=err_text,
        message_control_id=ack.msh.msh_10.value,
        charset=ack.msh.msh_18.value if ack.msh.msh_18 else "",
    )


@dataclass
class Observation:
    """One OBX row of an ORU^R01 result."""

    code: str  # OBX-3.1 Observation Identifier
    name: str  # OBX-3.2
    value: str  # OBX-5 Observation Value (NM)
    units: str  # OBX-6.1 Units
    reference_range: str  # OBX-7 References Range
    flag: str  # OBX-8 Abnormal Flags (table 0078): N, H, L, HH, LL, AA
    status: str = "F"  # OBX-11 Observation Result Status (table 0085): F final


def oru(
    control_id: str,
    filler_number: str,
    observations: list[Observation],
    person: Person | None = None,
    *,
    attending: str = "D1001",
    charset: str = "UNICODE UTF-8",
) -> Message:
    """ORU^R01 (v2.5 §7.3.1) as a LIS sends a result: PID, PV1, OBR, OBX rows."""
    m = message("ORU_R01", "R01", control_id, charset=charset)
    m.msh.msh_3.hd_1 = "LIS"  # MSH-3 Sending Application: the laboratory system
    result = m.add_group("ORU_R01_PATIENT_RESULT")
    patient = result.add_group("ORU_R01_PATIENT")
    fill_pid(patient.pid, person or Person())
    visit = patient.add_group("ORU_R01_VISIT")
    fill_pv1(visit.pv1, patient_class="I")
    visit.pv1.pv1_7.xcn_1 = attending  # PV1-7 Attending Doctor (XCN-1 ID number)
    order = result.add_group("ORU_R01_ORDER_OBSERVATION")
    obr = order.obr
    obr.obr_1 = "1"  # OBR-1 Set ID
    obr.obr_3.ei_1 = filler_number  # OBR-3 Filler Order Number (the LIS's request id)
    obr.obr_4.ce_1 = "BMP"  # OBR-4 Universal Service Identifier
    obr.obr_4.ce_2 = "生化全项"
    obr.obr_7.ts_1 = SENT_AT  # OBR-7 Observation Date/Time
    obr.obr_25 = "F"  # OBR-25 Result Status
    for n, obs in enumerate(observations, start=1):
        group = order.add_group("ORU_R01_OBSERVATION")
        obx = group.obx
        obx.obx_1 = str(n)  # OBX-1 Set ID
        obx.obx_2 = "NM"  # OBX-2 Value Type: numeric
        obx.obx_3.ce_1 = obs.code  # OBX-3.1 Observation Identifier
        obx.obx_3.ce_2 = obs.name  # OBX-3.2 text
        obx.obx_3.ce_3 = "L"  # OBX-3.3 coding system: local
        obx.obx_5 = obs.value  # OBX-5 Observation Value
        obx.obx_6.ce_1 = obs.units  # OBX-6 Units
        obx.obx_7 = obs.reference_range  # OBX-7 References Range
        obx.obx_8 = obs.flag  # OBX-8 Abnormal Flags
        obx.obx_11 = obs.status  # OBX-11 Observation Result Status
        obx.obx_14.ts_1 = SENT_AT  # OBX-14 Date/Time of the Observation
    return m
