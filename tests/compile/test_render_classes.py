"""render.py spells its two character classes as what they match (compiling a negated class that
reaches U+10FFFF cost ~8 ms at every start). Here each is checked, code point by code point,
against the spelling that states the rule: the complement of YAML's printable set."""

from __future__ import annotations

import re

from mlspec.compile import render

# YAML 1.2 printable (c-printable), minus the line breaks YAML 1.1 adds (NEL, LS, PS) and the BOM
PRINTABLE = re.compile(
    "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
PLAIN = re.compile(r"^[A-Za-z0-9_$./][^#:*\"'\x00-\x1f\x7f-\U0010ffff]*$")


def test_unprintable_is_the_complement_of_yaml_printable() -> None:
    wrong = [hex(cp) for cp in range(0x110000)
             if bool(render._UNPRINTABLE.search(chr(cp))) != bool(PRINTABLE.search(chr(cp)))]
    assert wrong == []
    assert render._UNPRINTABLE.search("\x85") and render._UNPRINTABLE.search("\ufeff")


def test_plain_is_printable_ascii_without_yaml_indicators() -> None:
    wrong = [hex(cp) for cp in range(0x110000)
             for text in (chr(cp), "a" + chr(cp), "a" + chr(cp) + "b")
             if bool(render._PLAIN.match(text)) != bool(PLAIN.match(text))]
    assert wrong == []
    assert render._PLAIN.match("src/train.py") and not render._PLAIN.match("a: b")
