"""Does this mail belong to the other team? Evidence from the mail itself, weighed, with a confidence and reasons.

Canada (positive) against the USA (negative): postal codes and ZIP codes next to their province or state, full
province and state names, unambiguous cities, telephone area codes (libphonenumber), taxes and currencies, the
sender's known account, the address's country domain, and, weakly, French. What never counts: a .com domain
(Canadian businesses use them), French alone (it is written in the US too), "CA", "ON", "IN", "OK"... as words
(they count only in an address, right before a ZIP or postal code), our own addresses and toll-free number.
Places, codes and phone numbers are the entities of the understanding layer (``core.nlp``). Confident means one
item of decisive evidence (a full address: a postal code with its province, a ZIP code with its state; a GST/HST
registration number; the sender's known account) or strong evidence of two kinds, and nothing strong for the
inbox's own country; or, when nothing at all points to the inbox's own country, the sender's signature or one
strong item (an area code, a postal or ZIP code, the other country's taxes) of the other. Otherwise at most
"unsure", for an agent to decide. Wrong forwards are the costliest mistake: 0 is the first rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from core.nlp import Entity
from core.text import fold_accents
from mailroom.context import TriageContext
from mailroom.mail import Evidence, Mail

# A Canadian business number with its GST/HST or QST program account ("81234 5678 RT0001"): a Canadian business.
BUSINESS_NUMBER = re.compile(r"\b(\d{5}\s?\d{4}\s?(?:RT|TQ)\s?\d{4})\b")
# Canadian taxes and currency; the tax names also in lower case ("50$ + tps/tvq"), but "tps" only beside "tvq" (it is
# also short for "temps") and "PST", "CAD" only in capitals.
CANADIAN_MONEY = re.compile(
    r"\b(PST|TPS|TVP|CAD)\b|(?i:\b(gst|hst|qst|tvq|tvh)\b|\btps\s*(?:/|et|\+|&)\s*tvq\b)|\bCA\$|\$\s?CA(N)?\b"
    r"|(?i:\bcanadian dollars?\b|dollars? canadiens?)"
)
# US taxes: a state's tax or a US tax form or number is strong; "sales tax" or US dollars alone are said in Canada
# too (HST is a sales tax; some Canadian businesses pay in USD), so they weigh less.
US_TAXES = re.compile(r"(?i:\bstate (sales )?tax\w*|\bcounty tax\w*)|\b(IRS|EIN|W-9|1099)\b")
US_MONEY = re.compile(r"\bUSD\b|\bUS\$|(?i:\bsales tax\b|\bUS dollars?\b)")

# The customer naming the account's (or the company's) country: "our Canadian account", "le compte canadien",
# "Tidewater Outfitters Canada Ltd.", "Acme USA Inc." The account is what decides the team, not where its writer
# sits (a US controller writing about the Canadian subsidiary's account), so this weighs as much as a full address.
ACCOUNT_CANADIAN = re.compile(
    r"(?i:\bcanadian (?:account|subsidiary|entity|company)\b|\baccounts? (?:in|for) canada\b"
    r"|\b(?:compte|filiale|entreprise|societe) (?:canadienne?|au canada|du canada)\b)"
    r"|\bCanada,? (?:Ltd|Ltee|Inc|Corp|ULC)\b"
)
ACCOUNT_AMERICAN = re.compile(
    r"(?i:\b(?:american|u\.s\.|usa) (?:account|subsidiary|entity|company)\b"
    r"|\baccounts? (?:in|for) the (?:us|u\.s\.|usa|united states)\b"
    r"|\b(?:compte|filiale|entreprise|societe) (?:americaine?|aux etats-unis|des etats-unis)\b)"
    r"|\bUS (?:account|subsidiary|entity|company)\b|\b(?:USA|America),? (?:Inc|LLC|Corp)\b"
)

# A full address (a postal code with its province, a ZIP code with its state) decides alone; a postal or ZIP code
# without one, an area code, Canadian taxes by name are strong; places, domains and French add to them.
DECISIVE = 4.0
STRONG = 3.0
# Strong evidence this heavy decides alone when nothing at all points to the inbox's own country (see decide).
ALONE = 2.0
CONFIDENT = 0.9
UNSURE = 0.6


def _capped(found: list[str], each: float, cap: float) -> float:
    return min(len(set(found)) * each, cap)


def with_account(evidence: Evidence, account_region: str | None, account_number: str | None) -> Evidence:
    """The evidence plus what the sender's known account says (the strongest evidence, listed first)."""
    if account_region not in ("CA", "US"):
        return evidence
    combined = Evidence()
    country = "Canadian" if account_region == "CA" else "American"
    combined.add("account", DECISIVE if account_region == "CA" else -DECISIVE,
                 f"the sender's account {account_number} is {country}", decisive=True)
    combined.score += evidence.score
    combined.kinds_ca |= evidence.kinds_ca
    combined.kinds_us |= evidence.kinds_us
    combined.weight_ca += evidence.weight_ca
    combined.weight_us += evidence.weight_us
    combined.reasons += evidence.reasons
    combined.decisive |= evidence.decisive
    return combined


def weigh(text: str, entities: Sequence[Entity], sender: str, language: str, signature_start: int | None = None) -> Evidence:
    """The evidence in a mail's own words, their entities (``core.nlp``) and its sender's address; entities from
    ``signature_start`` on are the sender's own contact block."""
    evidence = Evidence()
    signature_start = len(text) if signature_start is None else signature_start
    for country, sign in (("CA", 1.0), ("US", -1.0)):
        _weigh_places(evidence, [e for e in entities if e.country == country], sign)
        own = [e for e in entities if e.country == country and e.start >= signature_start
               and e.label in ("PLACE", "POSTAL_CODE", "ZIP_CODE")]  # an address, not a phone alone
        if own:
            evidence.settle(country, f"the sender's signature is {_COUNTRY[country]} ({own[0].text})")
    number = BUSINESS_NUMBER.search(text)
    if number:  # the program suffix is the CRA's (RT: GST/HST) or Revenu Québec's (TQ: QST), whatever the checksum
        evidence.add("business number", DECISIVE, f"a Canadian GST/HST or QST registration number ({number.group(1)})",
                     decisive=True)
    folded = fold_accents(text)
    for pattern, sign, country in ((ACCOUNT_CANADIAN, 1.0, "Canadian"), (ACCOUNT_AMERICAN, -1.0, "American")):
        named = pattern.search(folded)
        if named:
            evidence.add("account named", sign * DECISIVE, f"the mail names a {country} account or company "
                         f"({named.group(0)})", decisive=True)
    if CANADIAN_MONEY.search(folded):
        evidence.add("money", 2.5, "Canadian taxes or currency (GST/HST/QST, TPS/TVQ, CAD)")
    if US_TAXES.search(text):
        evidence.add("money", -2.0, "US taxes (state tax, IRS, W-9)")
    elif US_MONEY.search(text):
        evidence.add("money", -1.0, "sales tax or US dollars (weak: said in Canada too)")
    domain = sender.rsplit("@", 1)[-1].lower() if "@" in sender else ""
    if domain.endswith(".ca"):
        evidence.add("domain", 1.5, f"the sender's domain {domain} is Canadian")
    elif domain.endswith(".us"):
        evidence.add("domain", -1.5, f"the sender's domain {domain} is American")
    if language == "fr":
        evidence.add("language", 0.8, "written in French (weak: French is written in the US too)")
    return evidence


def _weigh_places(evidence: Evidence, found: list[Entity], sign: float) -> None:
    """Add what the places, codes and phone numbers of one country (``sign``: +1 Canada, -1 USA) say."""
    codes = [e for e in found if e.label in ("POSTAL_CODE", "ZIP_CODE")]
    full_addresses = [(code, division) for code in codes if (division := _division_before(code, found))]
    if full_addresses:  # a full address: decisive on its own
        code, division = full_addresses[0]
        what = "postal code" if code.label == "POSTAL_CODE" else "ZIP code"
        evidence.add("address", sign * DECISIVE, f"{_COUNTRY[code.country or '']} address: {division} {what} {code.value}",
                     decisive=True)
    elif codes:  # a ZIP code named alone is often a card's billing ZIP, not the customer's address
        postal = codes[0].label == "POSTAL_CODE"
        evidence.add("address", sign * (STRONG if postal else 2.0),
                     f"{_COUNTRY[codes[0].country or '']} {'postal code' if postal else 'ZIP code'} {codes[0].value}")
    divisions = [e.text for e in found if e.label == "PLACE" and e.region and not _is_code(e.text)]
    if divisions:
        evidence.add("place", sign * _capped(divisions, 1.5, 2.5), f"{_DIVISION[sign]} {divisions[0]}")
    cities = [e.text for e in found if e.label == "PLACE" and not e.region]
    if cities:
        evidence.add("city", sign * _capped(cities, 1.0, 1.5), f"{_COUNTRY[found[0].country or '']} city {cities[0]}")
    phones = [e.region or "" for e in found if e.label == "PHONE"]
    if phones:
        evidence.add("phone", sign * _capped(phones, 2.0, 3.0), f"area code {phones[0]} ({_COUNTRY[found[0].country or '']})")


_COUNTRY = {"CA": "Canadian", "US": "US", "": ""}
_DIVISION = {1.0: "province", -1.0: "state"}


def _is_code(text: str) -> bool:
    return len(text.strip(".")) <= 2 or text.upper() == text and len(text) <= 3


def _division_before(code: Entity, found: list[Entity]) -> str | None:
    """The province or state written right before a postal or ZIP code ("QC H3B 1K9", "(Québec) G5L 1A1")."""
    for entity in found:
        if entity.label == "PLACE" and entity.region and 0 <= code.start - entity.end <= 3:
            return entity.text
    return None


def probability_canadian(score: float) -> float:
    return 1 / (1 + math.exp(-score / 1.5))


def decide(evidence: Evidence, team: str) -> tuple[str, float]:
    """(misroute verdict, confidence in it) for a mail that reached ``team``'s inbox."""
    p_ca = probability_canadian(evidence.score)
    p_other = (1 - p_ca) if team == "CA" else p_ca
    other_kinds = evidence.kinds_us if team == "CA" else evidence.kinds_ca
    own_weight = evidence.weight_ca if team == "CA" else evidence.weight_us
    other_weight = evidence.weight_us if team == "CA" else evidence.weight_ca
    conflicting = own_weight >= STRONG and other_weight >= STRONG
    other_decisive = ("US" if team == "CA" else "CA") in evidence.decisive
    confident = p_other >= CONFIDENT and (len(other_kinds) >= 2 or other_decisive)
    # Nothing at all for the inbox's own country, and for the other one an item of decisive evidence (the sender's
    # signature) or of strong evidence (an area code, a postal or ZIP code, its taxes): theirs.
    alone = own_weight == 0 and (other_decisive or other_weight >= ALONE) and p_other >= UNSURE
    if (confident or alone) and not conflicting:
        return ("to_us" if team == "CA" else "to_ca"), round(p_other, 3)
    if p_other >= UNSURE or (conflicting and p_other >= 0.5):  # strong on both sides: unsure unless ours outweighs
        return "unsure", round(max(p_other, 0.5), 3)
    return "none", round(1 - p_other, 3)


class WeighPlaces:
    """What the mail itself says about where the customer is (read with the mail: no store needed)."""

    name = "places"

    def run(self, mail: Mail, context: TriageContext) -> None:
        if not mail.needs_ticket:
            return
        mail.place_evidence = weigh(mail.own_words, mail.entities, mail.from_address, mail.language,
                                    mail.signature_start)


class DetectMisroute:
    """Set ``misroute`` and its confidence, with the reasons: the mail's evidence and the sender's account."""

    name = "misroute"

    def run(self, mail: Mail, context: TriageContext) -> None:
        if not mail.needs_ticket or mail.place_evidence is None:
            return
        evidence = with_account(mail.place_evidence, mail.account_region, mail.account_number)
        mail.misroute, mail.misroute_confidence = decide(evidence, mail.team)
        if evidence.reasons:
            mail.reasons.append(
                f"misroute {mail.misroute} ({mail.misroute_confidence:.2f}): " + "; ".join(evidence.reasons)
            )
