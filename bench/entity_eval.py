"""Entity extraction of the understanding layer on customer messages it was never tuned on, both languages.

Reads ``bench/data/entities_heldout.yml`` (160 chat messages and mail excerpts, 80 English and 80 French, written
from the product brief and the FAQ only) and measures, per language:
- ``invoice``: the invoice a message means (its number, its month resolved against the set's ``today``, or the
  one before the latest), exactly right, as the chat's invoice and CDR actions read it
  (``core.entities.find_invoice_reference``);
- ``amounts``, ``places`` (with their country), ``postal`` (postal and ZIP codes): precision and recall of what
  ``core.nlp.analyse`` finds, as F1.
Every miss is printed.

Usage: .venv/bin/python bench/entity_eval.py [FILE]
The last line, for scripts: ``invoice_acc_en=… invoice_acc_fr=… amounts_f1_en=… … ms_per_text=…``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from core.entities import InvoiceReference, find_invoice_reference  # noqa: E402
from core.nlp import analyse  # noqa: E402
from core.text import fold_accents  # noqa: E402

KINDS = ("amounts", "places", "postal")


def expected_reference(raw: dict[str, Any] | None) -> InvoiceReference:
    if not raw:
        return InvoiceReference()
    if "number" in raw:
        return InvoiceReference(number=str(raw["number"]))
    if "month" in raw:
        year, month = str(raw["month"]).split("-")
        return InvoiceReference(month=date(int(year), int(month), 1))
    return InvoiceReference(back=int(raw["back"]))


def found_sets(text: str, language: str) -> dict[str, Counter[str]]:
    analysis = analyse(text, language)
    return {
        "amounts": Counter(e.value or "" for e in analysis.of("MONEY")),
        "places": Counter(f"{_fold(e.text)}|{e.country}" for e in analysis.of("PLACE")),
        "postal": Counter(e.value or "" for e in analysis.of("POSTAL_CODE", "ZIP_CODE")),
    }


def wanted_sets(item: dict[str, Any]) -> dict[str, Counter[str]]:
    return {
        "amounts": Counter(str(a) for a in item["amounts"]),
        "places": Counter(f"{_fold(p['text'])}|{p['country']}" for p in item["places"]),
        "postal": Counter([str(c) for c in item["postal_codes"]] + [str(c) for c in item["zip_codes"]]),
    }


def _fold(text: str) -> str:
    return fold_accents(str(text).lower()).rstrip(".")


def f1(true_positives: int, found: int, wanted: int) -> float:
    precision = true_positives / found if found else 1.0
    recall = true_positives / wanted if wanted else 1.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=ROOT / "bench" / "data" / "entities_heldout.yml")
    args = parser.parse_args(argv)
    data = yaml.safe_load(args.file.read_text(encoding="utf-8"))
    today = data["today"] if isinstance(data["today"], date) else date.fromisoformat(str(data["today"]))
    analyse("warm-up", "fr"), analyse("warm-up", "en")
    figures: dict[str, float] = {}
    elapsed, texts = 0.0, 0
    for language in ("en", "fr"):
        items = [item for item in data["items"] if item["language"] == language]
        right = 0
        counts = {kind: [0, 0, 0] for kind in KINDS}  # true positives, found, wanted
        for item in items:
            started = time.perf_counter()
            got = find_invoice_reference(item["text"], today, language)
            found = found_sets(item["text"], language)
            elapsed += time.perf_counter() - started
            texts += 1
            want = expected_reference(item["invoice"])
            if got == want:
                right += 1
            else:
                print(f"  [{language}] invoice {got}, expected {want}: {item['text'][:90]!r}")
            wanted = wanted_sets(item)
            for kind in KINDS:
                hits = sum((found[kind] & wanted[kind]).values())
                counts[kind][0] += hits
                counts[kind][1] += sum(found[kind].values())
                counts[kind][2] += sum(wanted[kind].values())
                if found[kind] != wanted[kind]:
                    print(f"  [{language}] {kind}: found {sorted(found[kind].elements())}, expected "
                          f"{sorted(wanted[kind].elements())}: {item['text'][:90]!r}")
        figures[f"invoice_acc_{language}"] = right / len(items)
        print(f"{language}: {len(items)} messages, invoice {right}/{len(items)}")
        for kind in KINDS:
            tp, found_n, wanted_n = counts[kind]
            figures[f"{kind}_f1_{language}"] = f1(tp, found_n, wanted_n)
            print(f"  {kind:<8} {tp} right of {found_n} found, {wanted_n} expected: F1 {figures[f'{kind}_f1_{language}']:.3f}")
    figures["ms_per_text"] = elapsed * 1000 / texts
    print(" ".join(f"{key}={value:.4f}" if key != "ms_per_text" else f"{key}={value:.1f}" for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
