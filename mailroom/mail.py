"""The value that travels through the pipeline: one incoming mail and everything the stages learn about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

from core.nlp import Entity, Sender

AUTO_REPLY = "auto_reply"
BOUNCE = "bounce"
BULK = "bulk"


@dataclass(frozen=True)
class SourceKey:
    """Where a message came from: mailbox, UIDVALIDITY and UID (a Maildir file gets a stable pseudo-UID)."""

    mailbox: str
    uidvalidity: int
    uid: int


@dataclass
class Evidence:
    """Weighed evidence: positive for Canada, negative for the USA, with the words that explain it."""

    score: float = 0.0
    kinds_ca: set[str] = field(default_factory=set)
    kinds_us: set[str] = field(default_factory=set)
    weight_ca: float = 0.0
    weight_us: float = 0.0
    reasons: list[str] = field(default_factory=list)
    # The countries an item of decisive evidence names (a full address, the sender's known account).
    decisive: set[str] = field(default_factory=set)

    def add(self, kind: str, weight: float, reason: str, decisive: bool = False) -> None:
        self.score += weight
        if weight > 0:
            self.kinds_ca.add(kind)
            self.weight_ca += weight
        elif weight < 0:
            self.kinds_us.add(kind)
            self.weight_us -= weight
        if decisive and weight:
            self.decisive.add("CA" if weight > 0 else "US")
        self.reasons.append(reason)

    def settle(self, country: str, reason: str) -> None:
        """Record an item of decisive evidence that adds no weight of its own (its parts are weighed already)."""
        self.decisive.add(country)
        self.reasons.append(reason)


@dataclass(frozen=True)
class Attachment:
    """An attachment as recorded: its name, MIME type and size in bytes."""

    filename: str | None
    content_type: str
    size: int


@dataclass
class Mail:
    """One incoming message. Stages set the typed fields below; ``reasons`` keeps what they concluded, in words.

    Attributes:
        raw: the message as received.
        team: the team whose inbox received it ("CA": billing@net2phone.ca, "US": billing@net2phone.com).
        mailbox: the configured mailbox name it came from.
    """

    raw: bytes
    team: str
    mailbox: str
    # parse
    message: Message | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_address: str = ""
    from_name: str = ""
    reply_to: str | None = None
    recipients: list[str] = field(default_factory=list)
    body: str = ""
    quoted: str = ""
    signature: str = ""
    html_only: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    attachments_dropped: bool = False
    size: int = 0
    # redaction
    card_numbers: int = 0
    # trust and automation
    own_mail: bool = False
    automated: str | None = None
    no_reply_sender: bool = False
    ack_suppressed_by_sender: bool = False
    bounce_of: str | None = None
    bounced_recipient: str | None = None
    hard_bounce: bool = False
    # threading
    ticket_id: int | None = None
    ticket_reference: str | None = None
    # understanding
    language: str = "en"
    topic: str | None = None
    topic_confidence: float = 0.0
    queue: str = "general"
    priority: str = "normal"
    account_id: int | None = None
    account_region: str | None = None
    account_number: str | None = None
    # The mail's own words (subject, new text, signature; our addresses left out) and what the understanding layer
    # found in them (entities only: a spaCy Doc would cost more to send back from a reader process than to make).
    own_words: str = ""
    entities: tuple[Entity, ...] = ()
    signature_start: int = 0  # where the signature starts in own_words (their length when it has none)
    sender: Sender = field(default_factory=Sender)  # the person and company it comes from
    place_evidence: Evidence | None = None  # what the mail says of where the customer is (misroute filter)
    misroute: str = "none"
    misroute_confidence: float = 0.0
    # decision
    acknowledge: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def needs_ticket(self) -> bool:
        """Automated mail (auto-replies, bounces, bulk, our own mail) creates no ticket."""
        return self.automated is None and not self.own_mail

    @property
    def right_team(self) -> str:
        """The team whose work this mail is, after misroute detection."""
        if self.misroute == "to_us":
            return "US"
        if self.misroute == "to_ca":
            return "CA"
        return self.team
