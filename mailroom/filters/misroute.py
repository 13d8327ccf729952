"""Does this mail belong to the other team? Evidence from the mail itself, weighed, with a confidence and reasons.

Canada (positive) against the USA (negative): postal codes and ZIP codes next to their province or state, full
province and state names, unambiguous cities, telephone area codes (libphonenumber), taxes and currencies, the
sender's known account, the address's country domain, and, weakly, French. What never counts: a .com domain
(Canadian businesses use them), French alone (it is written in the US too), "CA", "ON", "IN", "OK"... as words
(they count only in an address, right before a ZIP or postal code), our own addresses and toll-free number.
Confident means strong evidence of two kinds at least; otherwise at most "unsure", for an agent to decide.
"""

from __future__ import annotations

import math
import re

import phonenumbers

from core.text import fold_accents
from mailroom.context import TriageContext
from mailroom.mail import Evidence, Mail

POSTAL_CODE = re.compile(r"\b([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z])[ -]?(\d[ABCEGHJ-NPRSTV-Z]\d)\b")
PROVINCE_CODES = "ON|QC|BC|AB|MB|SK|NS|NB|NL|PE|YT|NU|NT|PQ"
STATE_CODES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|"
    "OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
PROVINCE_IN_ADDRESS = re.compile(rf"\b({PROVINCE_CODES})\.?,?\s+{POSTAL_CODE.pattern}")
STATE_AND_ZIP = re.compile(rf"\b({STATE_CODES})\.?,?\s+(\d{{5}})(?:-\d{{4}})?\b")
PROVINCES = re.compile(
    r"\b(ontario|quebec|british columbia|colombie-britannique|alberta|manitoba|saskatchewan|nova scotia|"
    r"nouvelle-ecosse|new brunswick|nouveau-brunswick|newfoundland|terre-neuve|prince edward island|"
    r"ile-du-prince-edouard|yukon|nunavut|northwest territories)\b"
)
# "Ontario, California" and "Ontario, CA" are a city in California, not the province.
US_PLACE_AFTER_PROVINCE = re.compile(r"\b(ontario|quebec)\s*,\s*(california|ca|oregon|or|new york|ny)\b")
STATES = re.compile(
    r"\b(texas|california|florida|arizona|nevada|ohio|michigan|illinois|pennsylvania|massachusetts|new jersey|"
    r"north carolina|south carolina|tennessee|louisiana|colorado|utah|minnesota|wisconsin|missouri|kentucky|"
    r"alabama|oklahoma|kansas|iowa|nebraska|idaho|montana|wyoming|connecticut|maryland|delaware|vermont|"
    r"new hampshire|arkansas|new mexico|hawaii|alaska|indiana|north dakota|south dakota|rhode island|"
    r"west virginia|oregon)\b"
)
CANADIAN_CITIES = re.compile(
    r"\b(toronto|montreal|calgary|ottawa|edmonton|winnipeg|mississauga|brampton|laval|gatineau|longueuil|"
    r"sherbrooke|saguenay|levis|trois-rivieres|halifax|saskatoon|regina|burnaby|kelowna|quebec city|"
    r"ville de quebec|markham|oakville|moncton|fredericton|st\. john's|charlottetown|whitehorse|yellowknife)\b"
)
US_CITIES = re.compile(
    r"\b(new york city|los angeles|chicago|houston|phoenix|philadelphia|san antonio|san diego|dallas|austin|"
    r"jacksonville|san francisco|seattle|denver|boston|miami|atlanta|nashville|las vegas|orlando|tampa|"
    r"charlotte|sacramento|baton rouge|new orleans|st\. louis|kansas city|salt lake city|minneapolis)\b"
)
CANADIAN_MONEY = re.compile(r"\b(GST|HST|QST|PST|TPS|TVQ|TVH|TVP|CAD)\b|\bCA\$|\$\s?CA(N)?\b|\bcanadian dollars?\b|dollars? canadiens?")
US_MONEY = re.compile(r"\b(USD|IRS|EIN)\b|\bUS\$|\bsales tax\b|\bUS dollars?\b|\bW-9\b|\bstate tax\b")
TOLL_FREE_AREA_CODES = {"800", "833", "844", "855", "866", "877", "888"}

STRONG = 3.0
CONFIDENT = 0.9
UNSURE = 0.6


# A North American number as people write it: "(514) 555-0199", "+1 514.555.0199", "1-416-555-0142",
# "4165550142". phonenumbers then says whose it is (area code and exchange), without its matcher's slow scan.
NANP_NUMBER = re.compile(r"(?<![\w+-])(?<!\d\.)(?:\+?1[\s.-]?)?\(?([2-9]\d{2})\)?[\s./-]?([2-9]\d{2})[\s.-]?(\d{4})(?!\d)")


def phone_regions(text: str) -> dict[str, list[str]]:
    """Area codes of the valid Canadian and US numbers in ``text`` (toll-free ones say nothing of a region)."""
    regions: dict[str, list[str]] = {"CA": [], "US": []}
    for match in NANP_NUMBER.finditer(text):
        area = match.group(1)
        if area in TOLL_FREE_AREA_CODES:
            continue
        number = phonenumbers.parse("+1" + "".join(match.groups()))
        region = phonenumbers.region_code_for_number(number) if phonenumbers.is_valid_number(number) else None
        if region in regions:
            regions[region].append(area)
    return regions


def _capped(found: list[str], each: float, cap: float) -> float:
    return min(len(set(found)) * each, cap)


def with_account(evidence: Evidence, account_region: str | None, account_number: str | None) -> Evidence:
    """The evidence plus what the sender's known account says (the strongest evidence, listed first)."""
    if account_region not in ("CA", "US"):
        return evidence
    combined = Evidence()
    country = "Canadian" if account_region == "CA" else "American"
    combined.add("account", 4.0 if account_region == "CA" else -4.0, f"the sender's account {account_number} is {country}")
    combined.score += evidence.score
    combined.kinds_ca |= evidence.kinds_ca
    combined.kinds_us |= evidence.kinds_us
    combined.weight_ca += evidence.weight_ca
    combined.weight_us += evidence.weight_us
    combined.reasons += evidence.reasons
    return combined


def weigh(text: str, sender: str, language: str, own_addresses: set[str]) -> Evidence:
    """The evidence in a mail's own words (not what it quotes) and its sender's address."""
    evidence = Evidence()
    for address in own_addresses:
        text = text.replace(address, " ")
    folded = fold_accents(text.lower())
    with_province = PROVINCE_IN_ADDRESS.findall(text)
    postal = [f"{a} {b}" for a, b in POSTAL_CODE.findall(text)]
    if postal:
        evidence.add("address", _capped(postal, STRONG, 4.0), f"Canadian postal code {postal[0]}"
                     + (f" with province {with_province[0][0]}" if with_province else ""))
    zips = STATE_AND_ZIP.findall(text)
    if zips:
        state, code = zips[0]
        evidence.add("address", -_capped([f"{s}{z}" for s, z in zips], STRONG, 4.0), f"US state and ZIP code {state} {code}")
    us_places = {m.group(1) for m in US_PLACE_AFTER_PROVINCE.finditer(folded)}
    provinces = [p for p in PROVINCES.findall(folded) if p not in us_places]
    if provinces:
        evidence.add("place", _capped(provinces, 1.5, 2.5), f"province {provinces[0].title()}")
    if us_places:
        evidence.add("place", -1.5, f"{next(iter(us_places)).title()} is named as a US city")
    states = STATES.findall(folded)
    if states:
        evidence.add("place", -_capped(states, 1.5, 2.5), f"state {states[0].title()}")
    cities = CANADIAN_CITIES.findall(folded)
    if cities:
        evidence.add("city", _capped(cities, 1.0, 1.5), f"Canadian city {cities[0].title()}")
    us_cities = US_CITIES.findall(folded)
    if us_cities:
        evidence.add("city", -_capped(us_cities, 1.0, 1.5), f"US city {us_cities[0].title()}")
    regions = phone_regions(text)
    if regions["CA"]:
        evidence.add("phone", _capped(regions["CA"], 2.0, 3.0), f"area code {regions['CA'][0]} (Canada)")
    if regions["US"]:
        evidence.add("phone", -_capped(regions["US"], 2.0, 3.0), f"area code {regions['US'][0]} (USA)")
    canadian_money = CANADIAN_MONEY.findall(text) + re.findall(r"dollars? canadiens?", folded)
    if canadian_money:
        evidence.add("money", 2.0, "Canadian taxes or currency (GST/HST/QST, CAD)")
    if US_MONEY.search(text) or "sales tax" in folded:
        evidence.add("money", -2.0, "US taxes or currency (sales tax, USD)")
    domain = sender.rsplit("@", 1)[-1].lower() if "@" in sender else ""
    if domain.endswith(".ca"):
        evidence.add("domain", 1.5, f"the sender's domain {domain} is Canadian")
    elif domain.endswith(".us"):
        evidence.add("domain", -1.5, f"the sender's domain {domain} is American")
    if language == "fr":
        evidence.add("language", 0.8, "written in French (weak: French is written in the US too)")
    return evidence


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
    if p_other >= CONFIDENT and len(other_kinds) >= 2 and not conflicting:
        return ("to_us" if team == "CA" else "to_ca"), round(p_other, 3)
    if p_other >= UNSURE or conflicting:
        return "unsure", round(max(p_other, 0.5), 3)
    return "none", round(1 - p_other, 3)


class WeighPlaces:
    """What the mail itself says about where the customer is (read with the mail: no store needed)."""

    name = "places"

    def run(self, mail: Mail, context: TriageContext) -> None:
        if not mail.needs_ticket:
            return
        text = "\n".join(part for part in (mail.subject, mail.body, mail.signature) if part)
        mail.place_evidence = weigh(text, mail.from_address, mail.language, context.own_addresses)


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
