"""The understanding layer shared by the chat and the mailroom, on spaCy: tokens, lemmas and the entities of a
customer's words, in English and French.

French runs ``fr_core_news_sm`` (tokens, morphology, lemmas, people, organisations and places); English runs a
blank spaCy pipeline (no English model by spaCy's authors is on PyPI), so its entities come from rules only. Both
add, as spaCy components:
- ``places``: an entity ruler over the gazetteer ``core/data/places.yml`` (provinces, states, cities, both
  languages; names shared by the two countries count only with a province or state right after them);
- ``billing_entities``: invoice numbers, months (CLDR month names from Babel, English and French) and relative
  months, money amounts, emails, North American phone numbers (their country from libphonenumber), postal codes
  and ZIP codes with the province or state written before them. These win over the statistical entities they
  overlap ("G5L 1A1" is a postal code, not MISC).

A pipeline is loaded once per process (``pipeline``); ``analyse`` returns the entities with normalised values, as
said (what day it is decides nothing here: ``core.entities`` resolves months against a date): ``MONTH`` as "2025-03"
or, without a year, "--03" (ISO 8601); ``RELATIVE_MONTH`` as months from this one ("-1": last month);
``MONEY`` as "1234.56"; ``POSTAL_CODE`` as "H3B 1K9"; ``PHONE`` as "+15145550199"; places with their country and
province or state code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import phonenumbers
import spacy
import yaml
from babel.dates import get_month_names
from email_validator import EmailNotValidError, validate_email
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from core.text import fold_accents

PLACES_FILE = Path(__file__).parent / "data" / "places.yml"
FRENCH_MODEL = "fr_core_news_sm"

INVOICE_NUMBER = re.compile(r"(?i)\binv[\s.\-_#:]*(?:no\.?\s*)?(\d{6})[\s\-_]*(\d{4})\b")
_POSTAL = r"\b([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z])[ -]?(\d[ABCEGHJ-NPRSTV-Z]\d)\b"
POSTAL_CODE = re.compile(f"(?i:{_POSTAL})")
# A province or state code counts only in an address: before its postal or ZIP code, or after a place and a comma.
PROVINCE_CODES = "ON|QC|BC|AB|MB|SK|NS|NB|NL|PE|YT|NU|NT|PQ"
STATE_CODES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|"
    "OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
PROVINCE_BEFORE_POSTAL = re.compile(rf"\b({PROVINCE_CODES})\.?,?\s+(?={POSTAL_CODE.pattern})")
STATE_AND_ZIP = re.compile(rf"\b({STATE_CODES})\.?,?\s+(\d{{5}})(?:-\d{{4}})?\b")
ZIP_NAMED = re.compile(r"(?i)\bzip(?:\s*code)?(?:\s*(?:is|:|#|no\.?))?\s*(\d{5})(?:-\d{4})?\b")
# "Laval, QC", "Burlington VT", "Rimouski (Qc)": a code right after a place.
CODE_AFTER_PLACE = re.compile(rf"\s*(?:,\s*|\(\s*)?({PROVINCE_CODES}|{STATE_CODES}|Qc)\b(?!['’-])")
# The first letter of a postal code is its province (X is shared by the two northern territories).
POSTAL_PROVINCE = {
    "A": "NL", "B": "NS", "C": "PE", "E": "NB", "G": "QC", "H": "QC", "J": "QC", "K": "ON", "L": "ON", "M": "ON",
    "N": "ON", "P": "ON", "R": "MB", "S": "SK", "T": "AB", "V": "BC", "X": "NT", "Y": "YT",
}
# Anything shaped like an address; email-validator then says whether it is one (syntax only: no network).
EMAIL_CANDIDATE = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")
# A North American number as people write it: "(514) 555-0199", "+1 514.555.0199", "1-416-555-0142".
NANP_NUMBER = re.compile(r"(?<![\w+-])(?<!\d\.)(?:\+?1[\s.-]?)?\(?([2-9]\d{2})\)?[\s./-]?([2-9]\d{2})[\s.-]?(\d{4})(?!\d)")
TOLL_FREE_AREA_CODES = {"800", "833", "844", "855", "866", "877", "888"}
# Money: "$1,234.56", "1 234,56 $", "45$", "CAD 89.10", "89,10 $ CA", "US$ 120", "250 USD".
_FIGURE = r"\d{1,3}(?:[ ,\u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?|\d{1,3}(?:\.\d{3})+,\d{1,2}|\d+(?:[.,]\d{1,2})?"
_CURRENCY = r"(?:\$\s?(?:CA|CAN|US)\b|(?:CA|CAN|US|C|U\.S\.)\s?\$|\$|CAD|USD|dollars?|piasses?|piastres?)"
MONEY = re.compile(
    rf"(?i)(?:{_CURRENCY}\s?(?P<before>{_FIGURE})(?![\d%])|(?<![\w.,])(?P<after>{_FIGURE})\s?{_CURRENCY})"
    r"|(?<![\w.,/:-])(?P<bare>\d{1,6}[.,]\d{2})(?![\w,/:-]|[.,]\d|\s?%)"
)

# Months: CLDR's names (wide and abbreviated) in English and French, accent-folded, without their dot.
_MONTH_LOCALES = ("en_CA", "en_US", "en_GB", "fr_CA", "fr_FR")
# Words that are also a month's name or abbreviation: a month only with a year after them or an invoice word near.
# Abbreviations ("Jan", "oct.") are names or words too: they need one of the contexts below.
_AMBIGUOUS_MONTHS = {"may", "mar", "march", "jan", "sep", "oct", "nov", "dec", "apr", "jun", "jul", "aug"}
_MONTH_BEFORE = re.compile(r"\b(of|from|for|in|my|our|the|this|last|de|d'|du|en|ma|mon|notre|la|le|mois d'?)\s*$")
_TITLE_BEFORE = re.compile(r"\b(mme|mmes|mlle|madame|monsieur|m\.|mr\.?|mrs\.?|ms\.?|miss)\s*$")
# A card's expiry or a "since" date is no invoice's month: "expires in June", "depuis le 1er octobre".
_NOT_INVOICE_MONTH = re.compile(r"\b(expir\w*|since|depuis|effective|a partir)\b[^.?!;]{0,14}$")
_MONTH_AFTER = re.compile(r"\.?('s|\s+(\d{1,2}\b|invoices?|bills?|statements?|cdrs?|calls?|charges?|usage))")
_INVOICE_WORDS = re.compile(
    r"\b(invoices?|bills?|billing|statements?|factur\w*|releves?|etats? de compte|cdrs?|calls?|appels|charges?|"
    r"frais|paid|paye\w*|usage)\b"
)
# Relative references, months back from this month; "the invoice before last" counts invoices, not months.
_RELATIVE_MONTHS = [
    (re.compile(r"\b(this month|current month|ce mois[- ]ci|du mois courant|mois en cours|mois-ci)\b"), 0),
    (re.compile(r"\b((last|previous|past) month('?s)?|mois (passe|dernier|precedent))\b"), 1),
    (re.compile(r"\b(month before last|two months ago|2 months ago|il y a (deux|2) mois)\b"), 2),
]
_PREVIOUS_INVOICE = re.compile(
    r"\b(second[- ]to[- ]last|second last|before (the )?last|one before( the)? last|previous (invoice|bill)|"
    r"avant[- ]derniere|d'avant la derniere|precedente)\b"
)


@dataclass(frozen=True)
class Entity:
    """One entity in a text: ``label``, the ``text`` as written at ``start``:``end``, and its normalised
    ``value`` (see the module's docstring), ``country`` (CA or US) and ``region`` (province or state code)."""

    label: str
    text: str
    start: int
    end: int
    value: str | None = None
    country: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Analysis:
    """A text's spaCy ``doc`` and its entities, in the order they are written."""

    language: str
    doc: Doc
    entities: tuple[Entity, ...]

    def of(self, *labels: str) -> list[Entity]:
        return [entity for entity in self.entities if entity.label in labels]


@dataclass(frozen=True)
class _Place:
    country: str | None
    region: str | None
    kind: str


@lru_cache(maxsize=1)
def _gazetteer() -> dict[str, _Place]:
    """Place name as written in core/data/places.yml → what it is."""
    data = yaml.safe_load(PLACES_FILE.read_text(encoding="utf-8"))
    places: dict[str, _Place] = {}
    for country, divisions in (("CA", "provinces"), ("US", "states")):
        for code, names in data[country][divisions].items():
            for name in names:
                places[name] = _Place(country, code, "province" if country == "CA" else "state")
        for name in data[country]["cities"]:
            places[name] = _Place(country, None, "city")
    for name in data["ambiguous"]:
        places[name] = _Place(None, None, "city")
    return places


def _key(text: str) -> str:
    return fold_accents(text.lower()).replace("’", "'")


@lru_cache(maxsize=1)
def _month_names() -> dict[str, int]:
    names: dict[str, int] = {}
    for locale in _MONTH_LOCALES:
        for names_of_width in (get_month_names("wide", locale=locale), get_month_names("abbreviated", locale=locale)):
            for number, name in names_of_width.items():
                names[_key(name).rstrip(".")] = number
    return names


@lru_cache(maxsize=1)
def _month_pattern() -> re.Pattern[str]:
    names = sorted(_month_names(), key=len, reverse=True)
    # "daout": French elision typed without its apostrophe.
    return re.compile(r"(?<![\w-])(?:d(?=[aeiou]))?(" + "|".join(map(re.escape, names))
                      + r")\b\.?(?![-'’]\w)(?:\s*,?\s*(20\d\d)\b)?")


@Language.component("billing_entities")
def billing_entities(doc: Doc) -> Doc:
    """Add the rule-found entities (see the module docstring); they replace the statistical ones they overlap."""
    existing = list(doc.ents)  # (each read of doc.ents walks every token)
    found = filter_spans([span for span in _rule_spans(doc, existing) if span is not None])
    kept = [ent for ent in existing if not any(ent.start < s.end and s.start < ent.end for s in found)]
    doc.ents = sorted(kept + found, key=lambda span: span.start)
    return doc


def _span(doc: Doc, start: int, end: int, label: str, place: str = "") -> Span | None:
    """A span of ``doc`` over those characters; ``place`` ("CA:province:QC") is kept as the span's id."""
    return doc.char_span(start, end, label=label, span_id=place, alignment_mode="expand")


def _rule_spans(doc: Doc, existing: list[Span]) -> Iterator[Span | None]:
    text = doc.text
    for match in INVOICE_NUMBER.finditer(text):
        yield _span(doc, match.start(), match.end(), "INVOICE_NUMBER")
    for match in EMAIL_CANDIDATE.finditer(text):
        yield _span(doc, match.start(), match.start() + len(match.group().rstrip(".")), "EMAIL")  # not the full stop
    for match in NANP_NUMBER.finditer(text):
        yield _span(doc, match.start(), match.end(), "PHONE")
    for match in MONEY.finditer(text):
        if not INVOICE_NUMBER.search(text, max(0, match.start() - 12), match.end() + 12):
            yield _span(doc, match.start(), match.end(), "MONEY")
    for match in POSTAL_CODE.finditer(text):
        yield _span(doc, match.start(), match.end(), "POSTAL_CODE")
    for match in PROVINCE_BEFORE_POSTAL.finditer(text):
        yield _span(doc, match.start(1), match.end(1), "PLACE", _province_id(match.group(1)))
    for match in STATE_AND_ZIP.finditer(text):
        yield _span(doc, match.start(1), match.end(1), "PLACE", f"US:state:{match.group(1)}")
        yield _span(doc, match.start(2), match.end(2), "ZIP_CODE")
    for match in ZIP_NAMED.finditer(text):
        yield _span(doc, match.start(1), match.end(1), "ZIP_CODE")
    yield from _codes_after_places(doc, existing)
    yield from _month_spans(doc, existing)


def _codes_after_places(doc: Doc, existing: list[Span]) -> Iterator[Span | None]:
    """"Laval, QC", "Burlington, VT": the code names the province or state, and settles a shared city's country."""
    for ent in existing:
        if ent.label_ != "PLACE":
            continue
        match = CODE_AFTER_PLACE.match(doc.text, ent.end_char)
        if match is None:
            continue
        code = match.group(1).upper()
        place = _province_id(code) if code in PROVINCE_CODES.split("|") else f"US:state:{code}"
        yield _span(doc, match.start(1), match.end(1), "PLACE", place)


def _province_id(code: str) -> str:
    code = code.upper()
    return f"CA:province:{'QC' if code == 'PQ' else code}"


def _month_spans(doc: Doc, existing: list[Span]) -> Iterator[Span | None]:
    folded = _key(doc.text)
    if len(folded) != len(doc.text):  # folding changed the length (rare ligatures): no offsets to trust
        return
    invoice_context = bool(_INVOICE_WORDS.search(folded))
    people = [(ent.start_char, ent.end_char) for ent in existing if ent.label_ in ("PER", "PERSON")]
    for match in _month_pattern().finditer(folded):
        name, year = match.group(1), match.group(2)
        if any(start <= match.start() < end for start, end in people) or _TITLE_BEFORE.search(folded, 0, match.start()):
            continue  # "Mme Avril", "Ms. April"
        if _NOT_INVOICE_MONTH.search(folded, 0, match.start()):
            continue
        if name in _AMBIGUOUS_MONTHS and not year:
            context = _MONTH_BEFORE.search(folded, 0, match.start()) or _MONTH_AFTER.match(folded, match.end(1))
            if not invoice_context or not context:
                continue  # "May I pay by cheque?", "we march on", "Thanks, Jan"
        if name == "mai" and doc.lang_ == "en":
            continue
        yield _span(doc, match.start(), match.end(), "MONTH")
    for pattern, _ in _RELATIVE_MONTHS:
        for match in pattern.finditer(folded):
            yield _span(doc, match.start(), match.end(), "RELATIVE_MONTH")
    for match in _PREVIOUS_INVOICE.finditer(folded):
        yield _span(doc, match.start(), match.end(), "PREVIOUS_INVOICE")


def _place_patterns() -> list[dict[str, Any]]:
    """One pattern per place name as written and, when it has accents, as often typed without them (the ruler
    compares lower case: the pattern keeps its capitals so that it is tokenized as the name is in a text)."""
    patterns = []
    for name, place in _gazetteer().items():
        place_id = f"{place.country or '?'}:{place.kind}:{place.region or ''}"
        for variant in {name, fold_accents(name)}:  # as written (the tokens match its tokenization), LOWER'd
            patterns.append({"label": "PLACE", "pattern": variant, "id": place_id})
    return patterns


# Only the start of a longer text is read: what a customer names is there, and spaCy refuses texts over 1,000,000
# characters (a pasted log in a chat message, a huge mail) rather than slowing down.
MAX_CHARS = 20_000
# The French model's statistical components (tokens to people): about 5 ms for a chat message, 60 ms for a long mail;
# the rules alone take 0.1 to 7 ms.
STATISTICAL = ["tok2vec", "morphologizer", "attribute_ruler", "lemmatizer", "ner"]


@lru_cache(maxsize=None)
def pipeline(language: str, statistical: bool = True) -> Language:
    """The spaCy pipeline of ``language`` (en or fr), built once per process. Without ``statistical``, French runs
    only the model's tokenizer and the rules (places, billing entities): no lemmas, morphology or people."""
    if language == "fr":
        nlp = spacy.load(FRENCH_MODEL, exclude=["parser"] + ([] if statistical else STATISTICAL))
    else:
        nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", name="places", before="ner" if "ner" in nlp.pipe_names else None,
                         config={"phrase_matcher_attr": "LOWER", "validate": False})
    ruler.add_patterns(_place_patterns())  # type: ignore[attr-defined]
    nlp.add_pipe("billing_entities", last=True)
    return nlp


def analyse(text: str, language: str, statistical: bool = False) -> Analysis:
    """The entities of ``text`` written in ``language`` (en or fr). ``statistical`` adds the French model's
    tokens-to-people components: measured by ``bench/entity_eval.py``, they change none of the billing entities
    (invoice, amounts, places, codes) at ten times the cost, so only callers that need morphology or people ask."""
    doc = pipeline("fr" if language == "fr" else "en", statistical)(text[:MAX_CHARS])
    return Analysis(language, doc, tuple(_entities(doc)))


def _entities(doc: Doc) -> Iterator[Entity]:
    ents = list(doc.ents)
    for index, ent in enumerate(ents):
        label = {"PER": "PERSON", "LOC": "LOCATION"}.get(ent.label_, ent.label_)
        value, country, region = _resolve(ent, ents[index + 1:index + 2])
        if label == "PLACE" and country is None:
            continue  # a shared name without the province or state that settles it
        if label == "EMAIL" and value is None:
            continue
        if label == "PHONE" and country is None:
            continue  # not a valid Canadian or US number, or toll-free
        yield Entity(label, ent.text, ent.start_char, ent.end_char, value, country, region)


def _resolve(ent: Span, following: list[Span]) -> tuple[str | None, str | None, str | None]:
    label, text = ent.label_, ent.text
    if label == "INVOICE_NUMBER":
        match = INVOICE_NUMBER.search(text)
        return (f"INV-{match.group(1)}-{match.group(2)}" if match else None), None, None
    if label == "MONTH":
        match = _month_pattern().match(_key(text))
        if match is None:
            return None, None, None
        month = _month_names()[match.group(1)]
        return (f"{match.group(2)}-{month:02d}" if match.group(2) else f"--{month:02d}"), None, None
    if label == "RELATIVE_MONTH":
        back = next(months for pattern, months in _RELATIVE_MONTHS if pattern.search(_key(text)))
        return str(-back), None, None
    if label == "PREVIOUS_INVOICE":
        return "1", None, None
    if label == "MONEY":
        return _amount(text), None, None
    if label == "EMAIL":
        try:
            return str(validate_email(text, check_deliverability=False).normalized).lower(), None, None
        except EmailNotValidError:
            return None, None, None
    if label == "PHONE":
        return _phone(text)
    if label == "POSTAL_CODE":
        match = POSTAL_CODE.search(text)
        code = f"{match.group(1)} {match.group(2)}".upper() if match else text.upper()
        return code, "CA", POSTAL_PROVINCE.get(code[0])
    if label == "ZIP_CODE":
        return text[:5], "US", None
    if label == "PLACE":
        country, kind, region = (ent.ent_id_ or "?::").split(":")
        after = following[0] if following else None
        if kind == "city" and after is not None and after.label_ == "PLACE" and after.ent_id_ \
                and after.start_char - ent.end_char <= 3 and not after.ent_id_.startswith("?"):
            country = after.ent_id_.split(":")[0]  # "Burlington, VT", "Vancouver, WA": the state settles it
        return None, (None if country == "?" else country), (region or None)
    return None, None, None


def _amount(text: str) -> str | None:
    figure = re.search(_FIGURE, text)
    if figure is None:
        return None
    digits = re.sub(r"[ \u00a0\u202f]", "", figure.group())
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d{1,2})?", digits):
        digits = digits.replace(",", "")
    elif re.fullmatch(r"\d{1,3}(\.\d{3})+,\d{1,2}", digits):
        digits = digits.replace(".", "").replace(",", ".")
    else:
        digits = digits.replace(",", ".")
    return digits


def _phone(text: str) -> tuple[str | None, str | None, str | None]:
    match = NANP_NUMBER.search(text)
    if match is None or match.group(1) in TOLL_FREE_AREA_CODES:
        return None, None, None
    number = phonenumbers.parse("+1" + "".join(match.groups()))
    if not phonenumbers.is_valid_number(number):
        return None, None, None
    region = phonenumbers.region_code_for_number(number)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, (region if region in ("CA", "US") else None), match.group(1)


# --- Who a mail comes from: the person and the company, from the From name and the signature. ---------------
_ROLE_NAMES = re.compile(
    r"(?i)\b(accounts? (payable|receivable)|billing|accounting|finance|admin|info|office|reception|support|team|"
    r"comptabilit[ée]|facturation|comptes? fournisseurs|administration|bureau|r[ée]ception|service|[ée]quipe|"
    r"no-?reply|do not reply|ne pas r[ée]pondre)\b"
)
_COMPANY = re.compile(
    r"(?i)(\b(inc|ltd|lt[ée]e|llc|llp|corp|corporation|co|company|cie|limit[ée]e?|limited|s\.?e\.?n\.?c|enr|"
    r"group|groupe|associates|associ[ée]s|partners)\b\.?|"
    r"^\s*(pharmacie|boulangerie|clinique|cabinet|garage|restaurant|caf[ée]|coop\w*|imprimerie|[ée]picerie|"
    r"quincaillerie|atelier|studio|centre|center|cpe|[ée]cole|bureau d'|entreprises?|les entreprises|transport\w*|"
    r"construction)\b|"
    r"\b(dental|dentaire|clinic|law|legal|services|consulting|solutions|technologies|construction|transport|"
    r"logistics|logistique|plumbing|plomberie|foods?|aliments|print\w*|media|m[ée]dia|design|realty|immobili\w*|"
    r"insurance|assurances?|pharmacy|bakery|farms?|fermes?|hardware|motors?|auto|medical|m[ée]dical|"
    r"veterinary|v[ée]t[ée]rinaire|hearing|audition|optom\w*|accounting|comptables?|management|gestion|propert(y|ies))\b)"
)
# A signature line that is not a name or a company: contact details, titles, addresses.
_NOT_A_NAME = re.compile(r"(@|https?:|www\.|\d|\b(tel|t[ée]l|phone|cell|fax|ext|poste)\b)", re.IGNORECASE)
_TITLE = re.compile(
    r"(?i)\b(manager|director|owner|president|pr[ée]sident\w*|coordinat\w*|assistant\w*|adjoint\w*|"
    r"gestionnaire|directeur|directrice|propri[ée]taire|comptable|accountant|controller|contr[ôo]leur\w*|officer|"
    r"clerk|commis|administrat\w*|responsable|technicien\w*|secr[ée]taire|analyst|analyste|specialist|"
    r"sp[ée]cialiste|ceo|cfo|coo|vp|pharmacien\w*|dentist\w*|associate|head of|chef)\b"
)
_PERSON_NAME = re.compile(r"^[A-ZÀ-Ý][\w'’-]+(?:\s+(?:[A-ZÀ-Ý][\w'’.-]*|de|du|des|van|von|la|le|st-?)){1,3}$")
_CLOSING_LINE = re.compile(
    r"(?i)^(thanks?|thank you|merci|regards|best|cordialement|salutations|sincerely|cheers|bonne|bien|au plaisir|"
    r"kind|warm|many|meilleures)\b"
)


@dataclass(frozen=True)
class Sender:
    """The person a mail comes from and their company, each None when the mail does not say."""

    person: str | None = None
    company: str | None = None


def last_block(body: str, lines: int = 5) -> str:
    """The last paragraph of a text when it is short (a signature the closing line did not announce)."""
    block = body.rstrip().rsplit("\n\n", 1)[-1]
    return block if 0 < len(block.splitlines()) <= lines else ""


def find_sender(display_name: str, signature: str, language: str) -> Sender:
    """The person and company of a mail: the From name when it is a person's, else the signature's name line; the
    company from the signature (a legal suffix or a kind of business in a line), never from a title or a contact
    line. spaCy's French organisations were tried on the signatures of 170 test mails: one company more, one
    department taken for a company, 8 ms a French mail; not used."""
    parts = (part.strip(" \t-–—•") for line in signature.splitlines() for part in _SIGNATURE_PARTS.split(line))
    lines = [line for line in parts if line and not _CLOSING_LINE.match(line) and len(line) <= 80][:8]
    person = _person_name(display_name)
    company = None
    for line in lines:
        if _NOT_A_NAME.search(line):
            continue
        if person is None and _person_name(line) and not _TITLE.search(line):
            person = _person_name(line)
            continue
        if company is None and not _TITLE.search(line) and line != person and (
                _COMPANY.search(line)):
            company = line
    if company is None and "," in (display_name or ""):
        tail = display_name.partition(",")[2]  # "Jean Roy, Garage Roy inc."
        if _COMPANY.search(tail):
            company = tail.strip()
    return Sender(person, company[:200] if company else None)


# A signature line's parts: "Tom Nguyen | Owner, Bright Path Tutoring" (but "Roy, Inc." is one name).
_SIGNATURE_PARTS = re.compile(r"[|,](?!\s*(?:inc|ltd|llc)\b)", re.IGNORECASE)


def _person_name(text: str) -> str | None:
    text = (text or "").strip().strip('"')
    if "," in text:
        text = text.split(",")[0].strip()
    if not text or _ROLE_NAMES.search(text) or _COMPANY.search(text) or _NOT_A_NAME.search(text):
        return None
    if text.isupper() or not _PERSON_NAME.match(text):
        return None
    return text[:200]
