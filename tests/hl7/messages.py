"""HL7 v2.5 messages as a HIS sends them (segment layouts from the v2.5 chapters 2-4, 6, 10).

Each builder returns text with `\r` between segments; tests vary separators and encodings
on the way to bytes.
"""

from __future__ import annotations

import hl7


def msh(
    message_type: str,
    control_id: str,
    *,
    version: str = "2.5",
    charset: str = "UNICODE UTF-8",
    processing: str = "P",
) -> str:
    return f"MSH|^~\\&|HIS|HOSP|BEDSIDE|HOSP|20250301093000+0800||{message_type}|{control_id}|{processing}|{version}|||AL|NE||{charset}"


def adt(
    trigger: str,
    control_id: str,
    *,
    mrn: str = "H100234",
    family: str = "欧阳",
    given: str = "秀兰",
    ward: str = "0301",
    charset: str = "UNICODE UTF-8",
    version: str = "2.5",
    extra_pid_address: str = "",
) -> str:
    return (
        "\r".join(
            [
                msh(f"ADT^{trigger}^ADT_A01", control_id, charset=charset, version=version),
                f"EVN|{trigger}|20250301093000+0800",
                # PID-3 repeats: the medical record number and the resident ID card number.
                f"PID|1||{mrn}^^^HOSP^MR~110105195503071226^^^CHN^NNCHN||{family}^{given}^^^^^L||19550307|F|||{extra_pid_address}||^PRN^PH^^^^^^^^^13911112222~^WPN^PH^^^^^^^^^01088886666",
                f"PV1|1|I|{ward}^12^3^HOSP||||D2001^何^主任",
                "AL1|1|DA|^青霉素^L",
                "AL1|2|DA|^磺胺类药物^L",
            ]
        )
        + "\r"
    )


def ack_fields(raw: bytes, codec: str = "utf-8") -> dict[str, str]:
    message = hl7.parse(raw.decode(codec).replace("\r\n", "\r"))
    msa = message.segment("MSA")
    out = {
        "code": str(msa[1]),
        "control_id": str(msa[2]),
        "text": str(msa[3]) if len(msa) > 3 else "",
    }
    try:
        err = message.segment("ERR")
        out["err_code"] = str(err[3][0][0]) if len(err) > 3 else ""
        out["err_text"] = message.unescape(str(err[8])) if len(err) > 8 else ""
    except KeyError:
        out["err_code"] = out["err_text"] = ""
    out["ack_control_id"] = str(message.segment("MSH")[10])
    out["text"] = message.unescape(out["text"])
    return out


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment from {field number: ER7 value}; unlisted fields are empty."""
    values = [fields.get(n, "") for n in range(1, max(fields) + 1)]
    return "|".join([name, *values])


def pid(mrn: str = "P0001", family: str = "周", given: str = "建国") -> str:
    return segment(
        "PID", {1: "1", 3: f"{mrn}^^^HOSP^MR", 5: f"{family}^{given}", 7: "19620314", 8: "M"}
    )


def orm(
    control_id: str,
    order_no: str,
    *,
    control: str = "NW",
    item: str = "KF-PT-01^物理治疗^L",
    sessions: str = "10",
    mrn: str = "P0001",
    extra: list[str] | None = None,
    orc25: str = "",
) -> str:
    orc = {
        1: control,
        2: f"{order_no}^HIS",
        7: f"{sessions}^^^20250301^^R",
        9: "20250301093000+0800",
        12: "D1001^李^明",
        25: orc25,
    }
    if control != "NW":
        orc = {1: control, 2: f"{order_no}^HIS", 16: "^患者要求撤销"}
    lines = [
        msh("ORM^O01^ORM_O01", control_id),
        pid(mrn),
        segment("PV1", {1: "1", 2: "O", 3: "0301"}),
        segment("ORC", orc),
    ]
    if control == "NW":
        lines.append(
            segment(
                "OBR",
                {
                    1: "1",
                    2: f"{order_no}^HIS",
                    4: item,
                    7: "20250301093000+0800",
                    16: "D1001^李^明",
                },
            )
        )
    return "\r".join(lines + (extra or [])) + "\r"


def dft(
    control_id: str, order_no: str, kind: str, *, mrn: str = "P0001", extra: list[str] | None = None
) -> str:
    rows = [
        segment(
            "FT1",
            {
                1: "1",
                2: f"{control_id}-1",
                4: "20250301",
                6: "CG",
                7: "KF-PT-01^物理治疗^L",
                10: "10",
                23: f"{order_no}^HIS",
            },
        ),
    ]
    if kind:
        rows.append(
            segment(
                "FT1",
                {
                    1: "2",
                    2: f"{control_id}-2",
                    4: "20250301",
                    6: kind,
                    7: "KF-PT-01^物理治疗^L",
                    10: "1",
                    11: "600.00",
                    23: f"{order_no}^HIS",
                },
            )
        )
    lines = [
        msh("DFT^P03^DFT_P03", control_id),
        segment("EVN", {1: "P03", 2: "20250301100000+0800"}),
        pid(mrn),
        *rows,
    ]
    return "\r".join(lines + (extra or [])) + "\r"


def siu(
    trigger: str,
    control_id: str,
    his_appointment: str,
    *,
    start: str,
    item: str = "KF-PT-01^物理治疗^L",
    order_no: str = "",
    mrn: str = "P0001",
) -> str:
    sch = {
        1: f"{his_appointment}^HIS",
        6: "^患者改期" if trigger == "S15" else "^复诊",
        11: f"^^^{start}",
        25: "Booked" if trigger == "S12" else "Cancelled",
    }
    if order_no:
        sch[26] = f"{order_no}^HIS"
    lines = [
        msh(f"SIU^{trigger}^SIU_S12", control_id),
        segment("SCH", sch),
        pid(mrn),
        segment("RGS", {1: "1"}),
        segment("AIS", {1: "1", 3: item, 4: start, 7: "30", 8: "min"}),
    ]
    return "\r".join(lines) + "\r"
