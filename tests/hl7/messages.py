"""HL7 v2.5 messages as a HIS sends them (segment layouts from the v2.5 chapters 2-4, 6, 10).

Each builder returns text with `\r` between segments; tests vary separators and encodings
on the way to bytes.
"""

from __future__ import annotations

import hl7


def msh(message_type: str, control_id: str, *, version: str = "2.5", charset: str = "UNICODE UTF-8", processing: str = "P") -> str:
    return f"MSH|^~\\&|HIS|HOSP|BEDSIDE|HOSP|20250301093000+0800||{message_type}|{control_id}|{processing}|{version}|||AL|NE||{charset}"


def adt(trigger: str, control_id: str, *, mrn: str = "H100234", family: str = "欧阳", given: str = "秀兰", ward: str = "0301", charset: str = "UNICODE UTF-8", version: str = "2.5", extra_pid_address: str = "") -> str:
    return "\r".join(
        [
            msh(f"ADT^{trigger}^ADT_A01", control_id, charset=charset, version=version),
            f"EVN|{trigger}|20250301093000+0800",
            # PID-3 repeats: the medical record number and the resident ID card number.
            f"PID|1||{mrn}^^^HOSP^MR~110105195503071226^^^CHN^NNCHN||{family}^{given}^^^^^L||19550307|F|||{extra_pid_address}||^PRN^PH^^^^^^^^^13911112222~^WPN^PH^^^^^^^^^01088886666",
            f"PV1|1|I|{ward}^12^3^HOSP||||D2001^何^主任",
            "AL1|1|DA|^青霉素^L",
            "AL1|2|DA|^磺胺类药物^L",
        ]
    ) + "\r"


def ack_fields(raw: bytes, codec: str = "utf-8") -> dict[str, str]:
    message = hl7.parse(raw.decode(codec).replace("\r\n", "\r"))
    msa = message.segment("MSA")
    out = {"code": str(msa[1]), "control_id": str(msa[2]), "text": str(msa[3]) if len(msa) > 3 else ""}
    try:
        err = message.segment("ERR")
        out["err_code"] = str(err[3][0][0]) if len(err) > 3 else ""
        out["err_text"] = message.unescape(str(err[8])) if len(err) > 8 else ""
    except KeyError:
        out["err_code"] = out["err_text"] = ""
    out["ack_control_id"] = str(message.segment("MSH")[10])
    out["text"] = message.unescape(out["text"])
    return out
