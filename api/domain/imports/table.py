"""Reading an import file (.xlsx or .csv) into rows, and writing its template.

A column has a key, a Chinese and an English header; a file's header row may use either,
or both ("科室编码 code", as the template writes them). Row numbers are the file's own
(the header is row 1), so an error points at the row a person sees in Excel.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

SUFFIXES = (".xlsx", ".csv")


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    required: bool = False
    example: str = ""
    note: str = ""

    @property
    def header(self) -> str:
        return f"{self.zh} {self.en}"

    @property
    def label(self) -> str:
        """How an error names the column: 「科室编码」(code)."""
        return f"「{self.zh}」({self.en})"


class FieldError(Exception):
    """A cell that cannot be read; `column` is the Column's key."""

    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


class FileError(Exception):
    """The file as a whole cannot be read (wrong type, no header, missing columns)."""


@dataclass
class Row:
    number: int
    values: dict[str, Any]


def _norm(text: str) -> str:
    return re.sub(r"[\s/()（）*＊:：_\-]+", "", str(text)).lower()


def _match_headers(cells: Sequence[Any], columns: Sequence[Column]) -> dict[int, str]:
    wanted: dict[str, str] = {}
    for col in columns:
        for alias in (col.zh, col.en, col.zh + col.en, col.key):
            wanted[_norm(alias)] = col.key
    found: dict[int, str] = {}
    for index, cell in enumerate(cells):
        if cell is None or str(cell).strip() == "":
            continue
        key = wanted.get(_norm(str(cell)))
        if key is None:
            raise FileError(
                f"第1行表头「{cell}」不是此类导入的列 / header {cell!r} is not a column of this import"
            )
        if key in found.values():
            raise FileError(f"第1行表头重复 / column given twice: {cell}")
        found[index] = key
    missing = [c for c in columns if c.required and c.key not in found.values()]
    if missing:
        raise FileError(
            "缺少必填列 / required columns missing: " + ", ".join(c.header for c in missing)
        )
    return found


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _rows(raw: list[Sequence[Any]], columns: Sequence[Column]) -> list[Row]:
    if not raw:
        raise FileError("文件为空 / the file is empty")
    headers = _match_headers(raw[0], columns)
    rows = []
    for number, cells in enumerate(raw[1:], start=2):
        if all(_blank(c) for c in cells):
            continue
        values: dict[str, Any] = {}
        for index, key in headers.items():
            value = cells[index] if index < len(cells) else None
            values[key] = value.strip() if isinstance(value, str) else value
        rows.append(Row(number, values))
    return rows


def _read_csv(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    # Excel saves "CSV UTF-8" with a byte-order mark and plain "CSV" in the Windows code
    # page, GB18030 (a superset of GBK) on a Chinese system.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise FileError("无法识别文件编码 / unknown text encoding (save as UTF-8)")
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise FileError(f"CSV 格式错误 / not a readable CSV file: {exc}") from None


def _read_xlsx(path: Path) -> list[tuple[Any, ...]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a damaged file
        raise FileError(f"无法打开 Excel 文件 / cannot open the workbook: {exc}") from None
    try:
        sheet = workbook.worksheets[0]
        return [tuple(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def read_table(path: Path, columns: Sequence[Column]) -> list[Row]:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FileError(f"仅支持 .xlsx 和 .csv / only .xlsx and .csv files: {path.name}")
    if not path.is_file():
        raise FileError(f"文件不存在 / no such file: {path}")
    raw = _read_csv(path) if suffix == ".csv" else _read_xlsx(path)
    return _rows(list(raw), columns)


def write_template(path: Path, title: str, columns: Sequence[Column]) -> None:
    """An .xlsx with the headers (required ones marked *), one example row, and a sheet
    explaining each column."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title[:31]
    sheet.append([("*" if c.required else "") + c.header for c in columns])
    sheet.append([c.example for c in columns])
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    for cell in sheet[1]:
        cell.font, cell.fill = bold, fill
    for index, col in enumerate(columns, start=1):
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = max(
            14, len(col.header) + 4
        )
    sheet.freeze_panes = "A2"
    notes = workbook.create_sheet("说明 notes")
    notes.append(["列 column", "必填 required", "说明 note", "示例 example"])
    for cell in notes[1]:
        cell.font = bold
    for col in columns:
        notes.append([col.header, "是 yes" if col.required else "", col.note, col.example])
    notes.append([])
    notes.append(
        ["第2行是示例，导入前请删除或改成真实数据 / row 2 is an example: replace or delete it"]
    )
    notes.column_dimensions["A"].width = 28
    notes.column_dimensions["C"].width = 70
    workbook.save(path)


# --- reading cells --------------------------------------------------------------------
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TRUE = {"是", "y", "yes", "true", "1", "√", "在职", "启用"}
FALSE = {"否", "n", "no", "false", "0", "×", "离职", "停用"}


def text(value: Any, key: str, *, required: bool = False, max_length: int = 200) -> str:
    if _blank(value):
        if required:
            raise FieldError(key, "必填 / required")
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    result = str(value).strip()
    if CONTROL.search(result):
        raise FieldError(key, "含有不可见的控制字符 / contains a control character")
    if len(result) > max_length:
        raise FieldError(key, f"超过 {max_length} 个字符 / longer than {max_length} characters")
    return result


def integer(
    value: Any, key: str, *, required: bool = False, default: int | None = None
) -> int | None:
    if _blank(value):
        if required:
            raise FieldError(key, "必填 / required")
        return default
    try:
        number = float(str(value).strip())
    except ValueError:
        raise FieldError(key, f"应为整数 / not a whole number: {value}") from None
    if not number.is_integer():
        raise FieldError(key, f"应为整数 / not a whole number: {value}")
    return int(number)


def decimal(value: Any, key: str, *, required: bool = False) -> float | None:
    if _blank(value):
        if required:
            raise FieldError(key, "必填 / required")
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        raise FieldError(key, f"应为数字 / not a number: {value}") from None


def boolean(value: Any, key: str, *, default: bool) -> bool:
    if _blank(value):
        return default
    word = str(value).strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise FieldError(key, f"应为 是/否 / yes or no expected: {value}")


def day(value: Any, key: str, *, required: bool = False) -> date | None:
    if _blank(value):
        if required:
            raise FieldError(key, "必填 / required")
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raw = str(value).strip().replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat("-".join(p.zfill(2) for p in raw.split("-")))
    except ValueError:
        raise FieldError(
            key, f"日期格式应为 YYYY-MM-DD / date must be YYYY-MM-DD: {value}"
        ) from None


def clock(value: Any, key: str, *, required: bool = False) -> str:
    if _blank(value):
        if required:
            raise FieldError(key, "必填 / required")
        return ""
    if isinstance(value, datetime):
        value = value.time()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    match = re.fullmatch(r"(\d{1,2})[:：](\d{2})(?::\d{2})?", str(value).strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise FieldError(key, f"时间格式应为 HH:MM / time must be HH:MM: {value}")
    return f"{int(match[1]):02d}:{match[2]}"


def words(value: Any) -> list[str]:
    if _blank(value):
        return []
    return [w.strip() for w in re.split(r"[,，、;；|\s]+", str(value)) if w.strip()]
