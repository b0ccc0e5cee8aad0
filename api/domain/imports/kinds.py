"""The import kinds by name, in the order a hospital loads them (each refers only to
kinds before it); light to import, for the command line's help."""

from __future__ import annotations

ORDER = ("departments", "staff", "catalog", "items", "schedules", "penalty-items")
TITLES = {
    "departments": "科室 departments",
    "staff": "人员 staff",
    "catalog": "手术目录 surgery catalog (ICD-9-CM-3, grades 1-4)",
    "items": "治疗项目 treatment items",
    "schedules": "排班 schedules",
    "penalty-items": "负面清单 penalty items",
}
