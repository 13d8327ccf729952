"""NLU and serving benchmark of the chat assistant: accuracy, out-of-scope rejection, reply language, latency,
training time, memory and start-up time, all measured on the real Rasa server over its REST channel.

1. Trains a model on everything the project trains on (timed: "full training").
2. Starts the stack as ``make run`` does (timed: start-up until both servers answer).
3. Sends every phrasing of ``bench/data/heldout.yml`` and ``bench/data/heldout_account.yml`` (written
   independently of the training data, never trained on) in a fresh, anonymous conversation and checks the reply
   is the expected one, in the phrasing's language: FAQ, conversation and account-request accuracy per language
   (an anonymous account request gets its topic's FAQ answer and how to log in), and reply-language accuracy.
4. Sends real out-of-scope queries the model never saw: CLINC150 ``oos_val`` and the ``val`` split of CLINC150's
   other-domain intents (from ``../shared/corpora``; only the train split is trained on), plus the held-out
   English and French out-of-scope phrasings; counts those not answered with an FAQ.
   And the handoff: every phrasing of ``bench/data/heldout_handoff.yml`` (written from the brief and the FAQ only)
   of a billing request only a person can settle must be routed to people (over REST: the email ticket offered,
   no FAQ answer), and its FAQ lookalikes answered with an FAQ.
5. Latency: p50/p95 of the first message of fresh conversations, and of turns 151-200 of 200-turn
   conversations; the Rasa server's resident memory (current and peak).
6. Unless ``--skip-split``: holds out a random 20 % of every article's phrasings, trains on the rest, and
   reports accuracy per language on them.

Usage: .venv/bin/python bench/nlu_eval.py [--skip-split] [--clinc PATH]
The last line, for scripts: key=value figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.build import build  # noqa: E402
from core.knowledge import load_articles  # noqa: E402
from runner.harness import Stack, send, stack_environment  # noqa: E402

DEFAULT_CLINC = ROOT.parent / "shared/corpora/utterances/clinc150-oos-eval/data_full.train_val.json"
CORE_RESPONSES = {
    "greet": ["utter_greet"],
    "goodbye": ["utter_goodbye"],
    "thank": ["utter_you_are_welcome"],
    "bot_challenge": ["utter_iamabot"],
    "help": ["utter_help"],
    "human_handoff": ["utter_no_live_chat", "utter_offer_email_ticket"],  # (over REST no agent can join)
    # asked in context: after an FAQ answer and "Was this helpful?"
    "affirm": ["utter_feedback_thanks"],
    "deny": ["utter_feedback_sorry", "utter_offer_human"],
}
# What an anonymous customer gets for each account request: the topic's FAQ answer (if any), then how to log in.
ACCOUNT_RESPONSES = {
    "account_invoices": ["utter_faq_document_retention", "utter_login_required"],
    "account_balance": ["utter_login_required"],
    "account_credits": ["utter_faq_credit_not_in_history", "utter_login_required"],
    "account_cdr": ["utter_faq_cdr_export", "utter_login_required"],
    "account_payment_status": ["utter_faq_payment_pending", "utter_login_required"],
    "request_user_change": ["utter_faq_add_portal_user", "utter_login_required"],
    "request_french": ["utter_faq_french_language", "utter_login_required"],
}
CONTEXT_OPENERS = {"en": "what cards do you accept", "fr": "quelles cartes acceptez-vous"}


def response_catalogue(domain_dir: Path) -> dict[str, tuple[str, str]]:
    """Every response text (and button title) of the domain → (response name, language)."""
    catalogue: dict[str, tuple[str, str]] = {}
    for path in domain_dir.glob("*.yml"):
        responses = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses") or {}
        for name, variations in responses.items():
            for variation in variations:
                conditions = variation.get("condition") or []
                language = "fr" if any(c.get("value") == "fr" for c in conditions) else "en"
                texts = [variation.get("text", "")] + [b["title"] for b in variation.get("buttons") or []]
                for text in texts:
                    catalogue.setdefault(" ".join(str(text).split()), (name, language))
    return catalogue


class Scorer:
    """Sends messages and scores the replies against the response catalogue."""

    def __init__(self, stack: Stack, catalogue: dict[str, tuple[str, str]]) -> None:
        self.stack = stack
        self.catalogue = catalogue
        self.counter = 0
        self.language_checks = [0, 0]
        self.language_misses: list[tuple[str, str, str]] = []

    def conversation(self) -> str:
        self.counter += 1
        return f"bench-{self.counter}"

    def replies(self, sender: str, text: str, language: str | None) -> list[str]:
        """Names of the responses the bot sent; tallies whether each is in ``language``."""
        names = []
        for reply in send(self.stack.rest_url, sender, text):
            name, reply_language = self.catalogue.get(" ".join(str(reply.get("text", "")).split()), ("?", "?"))
            names.append(name)
            if language is not None and name != "?":
                self.language_checks[0] += reply_language == language
                self.language_checks[1] += 1
                if reply_language != language:
                    self.language_misses.append((language, text, name))
        return names


def load_clinc_unseen(path: Path) -> tuple[list[str], list[str]]:
    """CLINC150 queries never trained on: oos_val, and val of the other-domain intents we train negatives on."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from select_clinc_negatives import EXCLUDED_INTENTS

    data = json.loads(path.read_text(encoding="utf-8"))
    oos = [text for text, _ in data["oos_val"]]
    other = [text for text, intent in data["val"] if intent not in EXCLUDED_INTENTS]
    return oos, other


def train(build_dir: Path, out_dir: Path) -> tuple[Path, float]:
    """``rasa train`` on the generated files of ``build_dir``; returns the model and the seconds it took."""
    rasa = str(Path(sys.executable).with_name("rasa"))
    # A cold cache of its own, so that the time is a full training, not a reuse of an earlier one.
    env = dict(os.environ, RASA_CACHE_DIRECTORY=str(out_dir / "cache"))
    began = time.monotonic()
    result = subprocess.run(
        [rasa, "train", "--config", str(ROOT / "config.yml"), "--domain", str(build_dir / "domain"), "--data",
         str(ROOT / "bot" / "data"), str(build_dir / "data"), "--out", str(out_dir), "--fixed-model-name", "bench"],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )
    if result.returncode != 0:
        raise SystemExit(f"rasa train failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return out_dir / "bench.tar.gz", time.monotonic() - began


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def faq_accuracy(scorer: Scorer, phrasings: Iterable[tuple[str, str, str]]) -> dict[str, list[int]]:
    """(article id, language, text) → per-language [right, total]: right when the first reply is the answer."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses = []
    for article_id, language, text in phrasings:
        names = scorer.replies(scorer.conversation(), text, language)
        right = bool(names) and names[0] == f"utter_faq_{article_id}"
        tally[language][0] += right
        tally[language][1] += 1
        if not right:
            misses.append((language, article_id, text, names[:1]))
    for miss in misses:
        print("    miss:", *miss)
    return tally


def rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-split", action="store_true", help="skip the 20 %% held-out split of the articles")
    parser.add_argument("--clinc", type=Path, default=DEFAULT_CLINC, help="CLINC150 data_full.train_val.json")
    args = parser.parse_args()
    if not args.clinc.exists():
        raise SystemExit(f"{args.clinc} not found: pass --clinc path/to/data_full.train_val.json")
    heldout = yaml.safe_load((ROOT / "bench/data/heldout.yml").read_text(encoding="utf-8"))
    account_heldout = yaml.safe_load((ROOT / "bench/data/heldout_account.yml").read_text(encoding="utf-8"))["account"]
    clinc_oos, clinc_other = load_clinc_unseen(args.clinc)
    work = Path(tempfile.mkdtemp(prefix="nlu-eval-"))
    figures: dict[str, Any] = {}
    try:
        build_dir = work / "build"
        build(ROOT / "knowledge", build_dir, ROOT / "domain.yml")
        print("training on all training data...", flush=True)
        model, figures["train_s"] = train(build_dir, work / "models")
        catalogue = response_catalogue(build_dir / "domain")
        env = stack_environment(work / "var", BILLING_MODEL_PATH=str(model))
        with Stack(env) as stack:
            figures["startup_s"] = stack.started_in
            scorer = Scorer(stack, catalogue)
            print("held-out FAQ phrasings (never trained on):", flush=True)
            phrasings = [(a, lang, t) for a, by_lang in heldout["faq"].items() for lang, ts in by_lang.items() for t in ts]
            for language, (right, total) in sorted(faq_accuracy(scorer, phrasings).items()):
                figures[f"faq_acc_{language}"] = right / total
                print(f"  FAQ intent accuracy {language}: {right}/{total} = {right / total:.1%}")
            core_tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for intent, by_language in heldout["core"].items():
                for language, texts in by_language.items():
                    for text in texts:
                        sender = scorer.conversation()
                        if intent in ("affirm", "deny"):
                            scorer.replies(sender, CONTEXT_OPENERS[language], language)
                        names = scorer.replies(sender, text, language)
                        right = names[: len(CORE_RESPONSES[intent])] == CORE_RESPONSES[intent]
                        core_tally[language][0] += right
                        core_tally[language][1] += 1
                        if not right:
                            print("    miss:", language, intent, text, names[:2])
            for language, (right, total) in sorted(core_tally.items()):
                figures[f"core_acc_{language}"] = right / total
                print(f"  conversation intents accuracy {language}: {right}/{total} = {right / total:.1%}")
            account_tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for intent, by_language in account_heldout.items():
                for language, texts in by_language.items():
                    for text in texts:
                        names = scorer.replies(scorer.conversation(), text, language)
                        right = names == ACCOUNT_RESPONSES[intent]
                        account_tally[language][0] += right
                        account_tally[language][1] += 1
                        if not right:
                            print("    miss:", language, intent, text, names[:2])
            for language, (right, total) in sorted(account_tally.items()):
                figures[f"account_acc_{language}"] = right / total
                print(f"  account requests accuracy {language} (anonymous: FAQ + log in): {right}/{total} = "
                      f"{right / total:.1%}")
            print("handoff (never trained on):", flush=True)
            handoff = yaml.safe_load((ROOT / "bench/data/heldout_handoff.yml").read_text(encoding="utf-8"))
            for language, texts in sorted(handoff["needs_person"].items()):
                routed = 0
                for text in texts:
                    names = scorer.replies(scorer.conversation(), text, language)
                    right = "utter_offer_email_ticket" in names and not any(n.startswith("utter_faq_") for n in names)
                    routed += right
                    if not right:
                        print("    not routed:", language, text, names[:2])
                figures[f"handoff_routed_{language}"] = routed / len(texts)
                print(f"  billing requests for a person routed to people {language}: {routed}/{len(texts)} = "
                      f"{routed / len(texts):.1%}")
            for language, texts in sorted(handoff["lookalikes"].items()):
                answered = 0
                for text in texts:
                    names = scorer.replies(scorer.conversation(), text, language)
                    answered += bool(names) and names[0].startswith("utter_faq_")
                figures[f"handoff_lookalikes_answered_{language}"] = answered / len(texts)
                print(f"  their FAQ lookalikes answered with an FAQ {language}: {answered}/{len(texts)} = "
                      f"{answered / len(texts):.1%}")
            print("out-of-scope queries (never trained on):", flush=True)
            sets = {
                "clinc_oos_val": (clinc_oos, "en"),
                "clinc_other_domains_val": (clinc_other, "en"),
                "heldout_oos_en": (heldout["out_of_scope"]["en"], "en"),
                "heldout_oos_fr": (heldout["out_of_scope"]["fr"], "fr"),
            }
            for name, (texts, language) in sets.items():
                rejected = 0
                for text in texts:
                    names = scorer.replies(scorer.conversation(), text, language)
                    rejected += not any(n.startswith("utter_faq_") for n in names)
                figures[f"oos_{name}"] = rejected / len(texts)
                print(f"  {name}: {rejected}/{len(texts)} = {rejected / len(texts):.1%} not answered with an FAQ")
            right, total = scorer.language_checks
            figures["reply_language"] = right / total
            print(f"reply language right: {right}/{total} = {right / total:.2%}")
            for expected, text, name in scorer.language_misses[:20]:
                print(f"    wrong language: expected {expected} for {text!r}, got {name}")
            print("latency...", flush=True)
            fresh_texts = [t for _, _, t in phrasings]
            fresh = []
            for text in fresh_texts[:300]:
                began = time.perf_counter()
                send(stack.rest_url, scorer.conversation(), text)
                fresh.append((time.perf_counter() - began) * 1000)
            late = []
            rng = random.Random(7)
            script = [t for _, _, t in phrasings] + ["ok", "merci", "thanks", "oui", "no"]
            for _ in range(3):
                sender = scorer.conversation()
                for turn in range(1, 201):
                    began = time.perf_counter()
                    send(stack.rest_url, sender, rng.choice(script))
                    if turn > 150:
                        late.append((time.perf_counter() - began) * 1000)
            figures["p50_fresh_ms"] = statistics.median(fresh)
            figures["p95_fresh_ms"] = percentile(fresh, 0.95)
            figures["p50_late_ms"] = statistics.median(late)
            figures["p95_late_ms"] = percentile(late, 0.95)
            print(f"  fresh conversations ({len(fresh)} messages): p50 {figures['p50_fresh_ms']:.1f} ms,"
                  f" p95 {figures['p95_fresh_ms']:.1f} ms")
            print(f"  turns 151-200 of 200-turn conversations ({len(late)} messages): p50 {figures['p50_late_ms']:.1f}"
                  f" ms, p95 {figures['p95_late_ms']:.1f} ms")
            figures["rss_mb"], figures["peak_rss_mb"] = rss_mb(stack.pid_of("rasa"))
            print(f"Rasa server memory: {figures['rss_mb']:.0f} MB resident, peak {figures['peak_rss_mb']:.0f} MB")
        print(f"full training: {figures['train_s']:.0f} s; start-up to first answer: {figures['startup_s']:.1f} s")
        if not args.skip_split:
            split_accuracy(work, figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
    return 0


def split_accuracy(work: Path, figures: dict[str, Any]) -> None:
    """Hold out 20 % of each article's phrasings per language, train on the rest, score the held-out ones."""
    rng = random.Random(2026)
    knowledge = work / "knowledge-split"
    knowledge.mkdir()
    held: list[tuple[str, str, str]] = []
    for article in load_articles(ROOT / "knowledge"):
        data = yaml.safe_load(article.path.read_text(encoding="utf-8"))
        for language, questions in data["questions"].items():
            shuffled = list(questions)
            rng.shuffle(shuffled)
            cut = max(1, len(shuffled) // 5)
            held += [(article.id, language, q) for q in shuffled[:cut]]
            data["questions"][language] = shuffled[cut:]
        (knowledge / article.path.name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    build_dir = work / "build-split"
    build(knowledge, build_dir, ROOT / "domain.yml")
    print("20 % split of the articles' phrasings: training on the other 80 %...", flush=True)
    model, _ = train(build_dir, work / "models-split")
    env = stack_environment(work / "var-split", BILLING_MODEL_PATH=str(model))
    with Stack(env) as stack:
        scorer = Scorer(stack, response_catalogue(build_dir / "domain"))
        for language, (right, total) in sorted(faq_accuracy(scorer, held).items()):
            figures[f"split_acc_{language}"] = right / total
            print(f"  split FAQ intent accuracy {language}: {right}/{total} = {right / total:.1%}")


if __name__ == "__main__":
    sys.exit(main())
