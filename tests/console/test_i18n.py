"""Every text of the console exists in French: each message the code and the templates use has a translation in
the catalog, with the same placeholders."""

from __future__ import annotations

import re

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from core.settings import PROJECT_ROOT

CATALOG = PROJECT_ROOT / "console" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def used_messages() -> set[str]:
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(PROJECT_ROOT / "console"), METHODS, keywords=KEYWORDS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_message_of_the_console_is_translated_with_its_placeholders() -> None:
    with CATALOG.open("rb") as file:
        catalog = read_po(file)
    translations = {m.id[0] if isinstance(m.id, tuple) else m.id: m.string for m in catalog if m.id}
    used = used_messages()
    assert len(used) > 150
    missing = sorted(message for message in used if not translations.get(message))
    assert missing == [], "run `make translations`, then translate these in " + str(CATALOG)
    for message in used:
        translated = translations[message]
        for text in translated if isinstance(translated, tuple) else (translated,):
            assert sorted(re.findall(r"%\(\w+\)\w", text)) == sorted(re.findall(r"%\(\w+\)\w", message)), message
