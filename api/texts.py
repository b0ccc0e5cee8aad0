"""Texts in both languages the hospital uses.

The server writes its user-facing texts as "中文 / English" (the Chinese first, as the
users read them; the English beside, for visiting staff and logs). Clients never take
such a string apart: every text leaves the server already split, as `{zh, en}`, and the
client shows the part of its locale.

The split is made here, once, knowing the convention: the English part is the text after
the first " / " that is followed by no Chinese at all, so a Chinese part that itself holds
" / " (a penalty measure "通报批评 / 扣绩效") stays whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEPARATOR = " / "
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


@dataclass(frozen=True)
class Texts:
    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


def split(text: str | None) -> Texts:
    """'中文 / English' → Texts('中文', 'English'); a text in one language only is both."""
    text = text or ""
    start = 0
    while (at := text.find(SEPARATOR, start)) >= 0:
        zh, en = text[:at], text[at + len(SEPARATOR) :]
        if _CJK.search(zh) and not _CJK.search(en):
            return Texts(zh.strip(), en.strip())
        start = at + 1
    return Texts(text, text)


def split_lines(text: str | None) -> Texts:
    """A multi-line body whose lines are each '中文 / English' (or one language only)."""
    lines = [split(line) for line in (text or "").split("\n")]
    return Texts("\n".join(t.zh for t in lines), "\n".join(t.en for t in lines))
