"""What the filters need besides the mail: settings, models, the store (when there is one), the time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy.orm import Session

from core.compose import is_own_marker, loop_marker
from core.knowledge import Article, load_articles
from core.language import LanguageDetector, Lexicon
from core.settings import Settings
from mailroom.topics import MailTopics
from mailroom.view import StoreView



@dataclass
class TriageContext:
    """Shared by every mail of a run. ``session`` and ``view`` are None for offline triage without a store."""

    settings: Settings
    detector: LanguageDetector
    topics: MailTopics
    articles: dict[str, Article]
    secret: str
    session: Session | None = None
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    view: StoreView | None = None  # what the store says about the mail being decided (``mailroom.view``)

    @classmethod
    def build(cls, settings: Settings, session: Session | None = None) -> TriageContext:
        """Load the articles, learn the language lexicon, load (or train and cache) the topic model."""
        secret = settings.signing_secret()  # first: an unusable secret is reported before a long training
        articles = load_articles(settings.knowledge_dir)
        lexicon = Lexicon.learn([(q, lang) for a in articles for lang, qs in a.questions.items() for q in qs])
        topics = MailTopics.load_or_train(articles, settings.var_dir / "mailroom")
        return cls(settings, LanguageDetector(lexicon=lexicon), topics, {a.id: a for a in articles}, secret, session)

    @property
    def own_addresses(self) -> set[str]:
        """Our system addresses: never acknowledged, never evidence of where a customer is."""
        return {self.settings.ca_address.lower(), self.settings.us_address.lower()}

    def loop_marker(self, message_id: str) -> str:
        """The value of ``X-Billing-Loop`` on a mail we send (``core.compose.loop_marker``)."""
        return loop_marker(self.secret, message_id)

    def is_own_marker(self, value: str, message_id: str | None) -> bool:
        """True when a loop marker was made by us for this Message-ID."""
        return is_own_marker(self.secret, value, message_id)
