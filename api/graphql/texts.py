"""`LocalizedText`: a server text in each language, so clients never split strings."""

from __future__ import annotations

import strawberry

from api import texts


@strawberry.type(description="A text in Chinese and in English; show the part of your locale.")
class LocalizedText:
    zh: str
    en: str

    @classmethod
    def of(cls, text: str | None) -> LocalizedText:
        parts = texts.split(text)
        return cls(zh=parts.zh, en=parts.en)

    @classmethod
    def of_lines(cls, text: str | None) -> LocalizedText:
        parts = texts.split_lines(text)
        return cls(zh=parts.zh, en=parts.en)
