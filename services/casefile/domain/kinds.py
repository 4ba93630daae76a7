"""The names a case file uses: its states (the lifecycle in `cases`), kinds of evidence,
penalty and enforcement, transfer targets, dispositions, the legal clocks and pause reasons."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    OPENED = "OPENED"
    ON_SITE = "ON_SITE"
    INSPECTED = "INSPECTED"
    SAMPLED = "SAMPLED"
    AWAITING_LAB = "AWAITING_LAB"
    RESULTS_CONFIRMED = "RESULTS_CONFIRMED"
    FINDINGS = "FINDINGS"
    FILED = "FILED"
    NOTICE_SERVED = "NOTICE_SERVED"
    HEARING_REQUESTED = "HEARING_REQUESTED"
    HEARING_SCHEDULED = "HEARING_SCHEDULED"
    HEARING_HELD = "HEARING_HELD"
    DECIDED = "DECIDED"
    DECISION_SERVED = "DECISION_SERVED"
    ENFORCED = "ENFORCED"
    CLOSED = "CLOSED"


class EvidenceKind(StrEnum):
    PHOTO = "PHOTO"
    VIDEO = "VIDEO"
    INSTRUMENT_SCREENSHOT = "INSTRUMENT_SCREENSHOT"
    DAS_LOG = "DAS_LOG"
    ONLINE_MONITORING_DATA = "ONLINE_MONITORING_DATA"
    INTERVIEW_RECORD = "INTERVIEW_RECORD"  # 询问笔录
    SURVEY_RECORD = "SURVEY_RECORD"  # 勘验笔录
    DOCUMENT = "DOCUMENT"
    ELECTRONIC_DATA = "ELECTRONIC_DATA"
    LAB_REPORT = "LAB_REPORT"
    PARTY_STATEMENT = "PARTY_STATEMENT"  # 陈述、申辩


class PenaltyKind(StrEnum):  # the national platform's punishInfo (domain.md §4.1)
    ORDER_TO_CORRECT = "ORDER_TO_CORRECT"  # 责令改正
    FINE = "FINE"  # 罚款
    RESTRICT_PRODUCTION = "RESTRICT_PRODUCTION"  # 责令限制生产
    SUSPEND_PRODUCTION = "SUSPEND_PRODUCTION"  # 停产整治
    SUSPEND_BUSINESS = "SUSPEND_BUSINESS"  # 停工/停业整治
    CLOSE_DOWN = "CLOSE_DOWN"  # 停业关闭
    OTHER = "OTHER"
    EXEMPT = "EXEMPT"  # 免于处罚


class EnforcementKind(StrEnum):
    FINE_PAID = "FINE_PAID"
    REINSPECTED = "REINSPECTED"  # 复查
    RECTIFICATION_VERIFIED = "RECTIFICATION_VERIFIED"
    COURT_ENFORCEMENT_APPLIED = "COURT_ENFORCEMENT_APPLIED"


class TransferTarget(StrEnum):
    POLICE = "POLICE"  # administrative detention (环保法 Art. 63)
    JUDICIAL = "JUDICIAL"  # suspected crime (刑法 338 / 286)


class Disposition(StrEnum):
    NO_VIOLATION = "NO_VIOLATION"
    NOT_FILED = "NOT_FILED"  # violation found but not filed (e.g. 首违不罚), reason required
    TRANSFERRED = "TRANSFERRED"
    EXEMPTED = "EXEMPTED"
    PENALTY_ENFORCED = "PENALTY_ENFORCED"


class ClockName(StrEnum):
    FILING = "FILING"
    DECISION = "DECISION"
    HEARING_REQUEST = "HEARING_REQUEST"
    DECISION_SERVICE = "DECISION_SERVICE"
    PAYMENT = "PAYMENT"
    REINSPECTION = "REINSPECTION"
    SAMPLE_HOLDING = "SAMPLE_HOLDING"


class PauseReason(StrEnum):  # time excluded from the 90-day decision clock (§4.1 row 9)
    HEARING = "HEARING"
    ANNOUNCEMENT = "ANNOUNCEMENT"
    MONITORING = "MONITORING"
    APPRAISAL = "APPRAISAL"
    SERVICE = "SERVICE"
