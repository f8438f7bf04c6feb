"""Whether a generated sentence is held by the passages it cites: its links, numbers, money, percentages and names."""

from __future__ import annotations

import re

_LINK = re.compile(r"(?:https?://|www\.)[^\s<>\"'“”]+|\b(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/[^\s<>\"'“”]*)?",
                   re.IGNORECASE)
_AMOUNT = r"(\d+(?:[.,]\d+)*)"  # 3, 2026, 1.2, 1,200
_NUMBER = re.compile(_AMOUNT)
_PERCENT = re.compile(rf"{_AMOUNT}\s*(?:%|percent\b|per cent\b)", re.IGNORECASE)
_MAGNITUDE = r"(k|m|mm|bn|b|thousand|million|billion)\b"
# "$1.2M", "€90k", "$280-420k" (the suffix of a range belongs to both ends), "$250K/year"
_MONEY = re.compile(rf"([$€£¥])\s?{_AMOUNT}(?:\s?(?:-|–|to)\s?[$€£¥]?{_AMOUNT})?\s?(?:{_MAGNITUDE})?", re.IGNORECASE)
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_WORD = re.compile(r"[^\W\d_][\w'’]*")


def _value(number: str) -> str:
    """A number as written, without thousands separators: "1,200" and "1200" are the same figure."""
    return number.replace(",", "")


def _address(link: str) -> str:
    """A link without its scheme, "www." and trailing punctuation: "https://www.x.com/a." is "x.com/a"."""
    link = re.sub(r"^(?:https?://)?(?:www\.)?", "", link.rstrip(".,;:!?)").lower())
    return link.rstrip("/")


def _figures(match: re.Match) -> set[tuple[str, float]]:
    """The amounts of one money expression, with their currency: "$280-420k" is $280,000 and $420,000."""
    currency, low, high, magnitude = match.groups()
    scale = _SCALE.get((magnitude or "").lower(), 1.0)
    return {(currency, round(float(_value(amount)) * scale, 2)) for amount in (low, high) if amount}


def _stem(word: str) -> str:
    word = word.lower().removesuffix("'s").removesuffix("’s")
    return word[:-1] if len(word) > 2 and word.endswith("s") else word


def _names(sentence: str) -> list[str]:
    """Capitalised words that do not start the sentence: names of companies, people, places, products."""
    words = _WORD.findall(sentence)
    return [w for w in words[1:] if w[0].isupper() and len(w) > 1]  # "Series A": the "A" names nothing alone


def unsupported(sentence: str, passages: list[str]) -> str:
    """What `sentence` says that none of `passages` holds, as a short phrase for the log; "" when all of it is held.

    A link, a number, a money figure, a percentage or a proper name (a capitalised word not at the sentence's start)
    must each appear in the passages the sentence cites: a model may rephrase them, never add one.
    """
    held = "\n".join(passages)
    links = {_address(link) for link in _LINK.findall(held)}
    for link in _LINK.findall(sentence):
        address = _address(link)
        if not any(held_link == address or held_link.startswith(address + "/") for held_link in links):
            return f"the link {link.rstrip('.,;:!?)')!r}"
    money = set().union(*map(_figures, _MONEY.finditer(held)))
    for match in _MONEY.finditer(sentence):
        if not _figures(match) <= money:
            return f"the money figure {match.group(0).strip()!r}"
    percentages = {_value(p) for p in _PERCENT.findall(held)}
    for percentage in _PERCENT.findall(sentence):
        if _value(percentage) not in percentages:
            return f"the percentage {percentage}%"
    numbers = {_value(n) for n in _NUMBER.findall(held)}
    for number in _NUMBER.findall(sentence):
        if _value(number) not in numbers:
            return f"the number {number}"
    words = {_stem(w) for w in _WORD.findall(held)}
    for name in _names(sentence):
        if _stem(name) not in words:
            return f"the name {name!r}"
    return ""
