"""The states and kinds of the penalty area, named once."""

from __future__ import annotations

from enum import StrEnum


class ScoreStatus(StrEnum):
    NOTIFIED = "notified"  # 已通知: the doctor was told and may appeal
    APPEALING = "appealing"  # 申诉中
    CONFIRMED = "confirmed"  # 已确认: counts towards penalties
    REVOKED = "revoked"  # 已撤销: the appeal was upheld


class PenaltyStatus(StrEnum):
    PENDING = "pending"  # 未下发
    ISSUED = "issued"  # 已下发
    ENDED = "ended"  # 已结束


class RuleKind(StrEnum):
    ONE_OFF = "one_off"  # one penalty per score at or over the threshold
    PERIODIC = "periodic"  # one penalty per doctor and period, updated as scores arrive


class Period(StrEnum):
    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"


STATUS_ZH = {
    PenaltyStatus.PENDING: "未下发",
    PenaltyStatus.ISSUED: "已下发",
    PenaltyStatus.ENDED: "已结束",
}
SUSPENSION_SCOPES = ("surgery", "prescribing", "antibiotics", "antitumor", "all")
