"""What a mail is about: the FAQ article it matches (the same knowledge/ articles as the chat) and its queue.

A topic model is trained on the articles' phrasings (cached on disk, keyed by the articles' content, so a
one-off ``make -s triage`` loads it instead of training). Mail is longer and wider than chat questions: the
queue is the one whose articles together are most likely, and when no article is likely enough, keywords of each
queue in both languages decide; with neither, the mail goes to ``general``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from core.knowledge import Article
from core.text import fold_accents
from core.topics import TopicModel, TopicModelConfig

# An article is the topic above this probability; the queue when its articles together pass QUEUE_CONFIDENCE,
# or when one sentence alone passes SENTENCE_CONFIDENCE.
TOPIC_CONFIDENCE = 0.5
QUEUE_CONFIDENCE = 0.45
SENTENCE_CONFIDENCE = 0.8
# Keywords win over a topic less likely than this when they name their queue this many times (and never the
# topic's queue).
KEYWORDS_WIN_BELOW = 0.6
KEYWORDS_TO_WIN = 3
# The footer of automated mail ("this is an automated notification", "ne pas répondre"): no topic of its own.
AUTOMATED_FOOTER = re.compile(
    r"\b(automated (notification|message|email)|do not reply|replies (are|will) not (be )?monitored|"
    r"unsubscribe|genere automatiquement|ne (pas )?(y )?repondre|message automatique|desabonner)\b"
)
# Words that place a mail in a queue, English and French side by side (accent-folded).
QUEUE_KEYWORDS: dict[str, re.Pattern[str]] = {
    "payments": re.compile(
        r"\b(pay(ment|ments|ing|ed)?|auto ?pay|autopay|card|visa|mastercard|amex|american express|discover|debit|"
        r"declined|charged?|refus\w*|paie\w*|pai(e|ement)s?|payer|pay[ée]|carte|prelev\w*|debit\w*|preautoris\w*)\b"
    ),
    "invoices": re.compile(
        r"\b(invoices?|bills?|billed|statements?|overcharg\w*|amount|charges|pdf|copy of|facture\w*|releve|"
        r"montant|frais|copie|surfactur\w*)\b"
    ),
    "cdr": re.compile(
        r"\b(cdrs?|call (detail|records?|history|logs?|details)|calls? list|usage|appels|details? des appels|"
        r"historique des appels|registre)\b"
    ),
    "credits": re.compile(r"\b(credits?|credited|refunds?|remboursement\w*|credite\w*|ristourne)\b"),
    "account": re.compile(
        r"\b(bill to|billing address|address|e-?mails? (for|of) billing|notifications?|language|french|"
        r"adresse|courriels? de facturation|avis|langue|francais|profil|time zone|fuseau)\b"
    ),
    "users": re.compile(
        r"\b(users?|login|log in|access|manage users|permissions?|utilisat\w*|acces|gerer les utilisateurs|"
        r"identifiant)\b"
    ),
}


@dataclass(frozen=True)
class TopicDecision:
    """The queue of a mail, the article it matches (if any) and how sure the model is."""

    queue: str
    article_id: str | None
    confidence: float
    reason: str


def articles_fingerprint(articles: list[Article]) -> str:
    """A hash of the articles' phrasings and queues: the cache key of the trained model."""
    digest = hashlib.sha256()
    for article in sorted(articles, key=lambda a: a.id):
        digest.update(f"{article.id}|{article.queue}".encode())
        for language in sorted(article.questions):
            for question in article.questions[language]:
                digest.update(question.encode())
    return digest.hexdigest()[:16]


class MailTopics:
    """Classifies mail text into an article and a queue."""

    def __init__(self, model: TopicModel, articles: dict[str, Article]) -> None:
        self._model = model
        self._articles = articles

    @classmethod
    def load_or_train(cls, articles: list[Article], cache_dir: Path) -> MailTopics:
        """The cached model for these articles, trained and cached first if there is none."""
        directory = cache_dir / f"topics-{articles_fingerprint(articles)}"
        try:
            model = TopicModel.load(directory)
        except (OSError, ValueError):
            texts = [q for a in articles for qs in a.questions.values() for q in qs]
            labels = [a.id for a in articles for qs in a.questions.values() for _ in qs]
            model = TopicModel.train(texts, labels, TopicModelConfig(regularization=10.0))
            directory.mkdir(parents=True, exist_ok=True)
            model.save(directory)
        return cls(model, {a.id: a for a in articles})

    def classify(self, subject: str, body: str) -> TopicDecision:
        """The queue and article of a mail's subject and new text."""
        text = f"{subject}\n{body}".strip()
        if not text:
            return TopicDecision("general", None, 0.0, "empty mail: queue general")
        if is_courtesy(body):
            return TopicDecision("general", None, 0.0, "a thank-you note: queue general")
        # The whole mail first; when it is unsure (greetings, context and the question mixed), its most
        # confident sentence; then the queues' keywords.
        whole = self._model.rank(text[:1500])
        by_queue: dict[str, float] = {}
        for article_id, probability in whole:
            queue = self._articles[article_id].queue
            by_queue[queue] = by_queue.get(queue, 0.0) + probability
        article_id, probability = whole[0]
        queue, queue_probability = max(by_queue.items(), key=lambda item: item[1])
        folded = fold_accents(text.lower())
        hits = {name: len(pattern.findall(folded)) for name, pattern in QUEUE_KEYWORDS.items()}
        keyword_queue, count = max(hits.items(), key=lambda item: item[1])
        if queue_probability >= QUEUE_CONFIDENCE:
            # The articles are FAQ questions; mail about something no article covers gets a middling topic.
            # Then a queue the mail's own words name again and again, where the topic's queue is never named,
            # or any named queue when the topic is the catch-all "how to reach billing", wins.
            unsure = probability < KEYWORDS_WIN_BELOW and count >= KEYWORDS_TO_WIN and hits.get(queue, 0) == 0
            catch_all = queue == "general" and count >= 2
            if keyword_queue != queue and (unsure or catch_all):
                return TopicDecision(keyword_queue, None, probability,
                                     f"queue {keyword_queue} from {count} keyword(s) over topic {article_id} "
                                     f"({probability:.2f}, queue {queue})")
            article = article_id if probability >= TOPIC_CONFIDENCE else None
            return TopicDecision(queue, article, probability,
                                 f"topic {article_id} ({probability:.2f}), queue {queue} ({queue_probability:.2f})")
        pieces = [piece for piece in sentences(body)[:30] if not AUTOMATED_FOOTER.search(fold_accents(piece.lower()))]
        if pieces:
            best_article, best = max(((r[0][0], r[0][1]) for r in self._model.rank_many(pieces)), key=lambda x: x[1])
            if best >= SENTENCE_CONFIDENCE:
                queue = self._articles[best_article].queue
                return TopicDecision(queue, best_article, best,
                                     f"topic {best_article} ({best:.2f}) from one sentence: queue {queue}")
        if count:
            return TopicDecision(keyword_queue, None, probability,
                                 f"queue {keyword_queue} from {count} keyword(s); no article is likely enough")
        return TopicDecision("general", None, probability, "no clear topic: queue general")


_SENTENCE_END = re.compile(r"(?<=[.?!])\s+|\n+")
_THANKS = re.compile(r"\b(thanks?|thank you|thx|appreciated?|merci|remercie\w*|apprecie)\b")
_REQUEST = re.compile(r"\b(please|could|can|need|would|pls|svp|pouvez|pourriez|peux|besoin|voudrais|aimerais)\b")


def sentences(text: str) -> list[str]:
    """The sentences (or lines) of a text that have at least three words."""
    return [piece.strip() for piece in _SENTENCE_END.split(text) if len(piece.split()) >= 3]


def is_courtesy(body: str) -> bool:
    """A short note that only thanks (no question, no request): no topic of its own."""
    folded = fold_accents(body.lower())
    return (bool(body) and len(body.split()) <= 25 and "?" not in body and bool(_THANKS.search(folded))
            and not _REQUEST.search(folded))
