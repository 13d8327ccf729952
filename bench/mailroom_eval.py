"""Triage accuracy of the mailroom on mail it was never tuned on.

Runs the offline triage (``make -s triage``'s code, without a store) over every message of a folder of .eml
files with an ``expected.yml`` (default ``bench/data/mail_heldout``: billing mail in both languages written
independently of the code, every queue, auto-replies, bulk, a bounce, misroutes, card numbers), and prints the
accuracy of each verdict, every miss, and whether any card number survived in the text.

Usage: .venv/bin/python bench/mailroom_eval.py [FOLDER]
The last line, for scripts: ``queue_acc=… language_acc=… automated_acc=… misroute_acc=… acknowledge_acc=…
false_forwards=… cards_left=…``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from stdnum import luhn  # noqa: E402

from core.settings import Settings  # noqa: E402
from mailroom.cli import triage_file  # noqa: E402
from mailroom.context import TriageContext  # noqa: E402

FIELDS = ("queue", "language", "automated", "misroute", "acknowledge")
CARD = re.compile(r"(?<!\d)(?:\d[ .-]?){12,18}\d(?!\d)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=ROOT / "bench" / "data" / "mail_heldout")
    args = parser.parse_args(argv)
    expected: dict[str, dict[str, object]] = yaml.safe_load((args.folder / "expected.yml").read_text(encoding="utf-8"))
    settings = Settings.from_env({"BILLING_VAR_DIR": tempfile.mkdtemp(prefix="mailroom-eval-")})
    context = TriageContext.build(settings)
    right = dict.fromkeys(FIELDS, 0)
    false_forwards = cards_left = 0
    for name, want in sorted(expected.items()):
        got = triage_file((args.folder / name).read_bytes(), context, settings)
        for field in FIELDS:
            if got[field] == want.get(field):
                right[field] += 1
            else:
                print(f"  {name}: {field} {got[field]!r}, expected {want.get(field)!r}")
        if got["misroute"] in ("to_us", "to_ca") and got["misroute"] != want.get("misroute"):
            false_forwards += 1
        # A card number is 13 to 19 digits that pass the Luhn check (an invoice or order number need not).
        if any(len(digits := re.sub(r"\D", "", m)) >= 13 and luhn.is_valid(digits) for m in CARD.findall(str(got["text"]))):
            cards_left += 1
            print(f"  {name}: a card number is left in the text")
    total = len(expected)
    print(f"{total} messages from {args.folder}")
    for field in FIELDS:
        print(f"  {field:<12} {right[field]}/{total} = {right[field] / total:.1%}")
    print(f"  auto-forwards that should not be: {false_forwards}; card numbers left in the text: {cards_left}")
    print(" ".join(f"{field}_acc={right[field] / total:.4f}" for field in FIELDS)
          + f" false_forwards={false_forwards} cards_left={cards_left}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
