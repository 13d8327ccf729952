"""What a mail is about: the FAQ article it matches (the same knowledge/ articles as the chat) and its queue.

A topic model is trained on the articles' phrasings and on customer mail written for training, labelled with its
queue (``mailroom/data/training_*.yml``: mail is wider than the FAQ); it is cached on disk, keyed by that data,
so a one-off ``make -s triage`` loads it instead of training. Two kinds of evidence are added up for each queue:
how likely the model finds it for the whole mail, and its share of the mail's queue keywords (English and
French). ``bench/mailroom_eval.py`` measures it on mail written independently of all this.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.files import remove_stale_temporaries
from core.knowledge import QUEUES, Article
from core.nlp import pipeline
from core.text import fold_accents
from core.topics import CorruptModel, TopicModel, TopicModelConfig

logger = logging.getLogger(__name__)

# The article is named as the mail's topic above this probability (and when it belongs to the chosen queue).
TOPIC_CONFIDENCE = 0.5
# Keywords count when the mail has at least this many; together they weigh this much against the topic model
# (chosen with bench/mailroom_eval.py on the test mail and the held-out sets a to c: 0.15 to 0.35 do as well).
KEYWORDS_MIN = 2
KEYWORD_WEIGHT = 0.25
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
        r"\b(bill to|billing address|address|e-?mails? (for|of) billing|billing e-?mails?|notifications?|language|"
        r"french|adresse|courriels? de facturation|avis|langue|francais|profil|time zone|fuseau)\b"
    ),
    # "Anything else" the billing team is asked: letters and supplier forms, fraud worries, rates and contracts.
    "general": re.compile(
        r"\b(letters?|lettre|attestation|good standing|en regle|(vendor|supplier) (form|registration|setup|set up)|"
        r"(formulaire|inscription|fiche) (de |des )?fournisseurs?|phishing|scam|fraud\w*|hameconn\w*|arnaque|"
        r"suspicious|suspect|pricing|price list|discount|rabais|escompte|contract|contrat|tax[- ]exempt\w*|exemption|"
        r"exempt\w* (from|de) (sales )?tax\w*|exonere\w*|w-?8\w*|w-?9|"
        # prices of more lines or another plan (sales questions), mail that may not be ours, thanks needing no answer
        r"prices?|prix|tarifs?|quote|soumission|forfaits?|per line|par ligne|(more|extra|additional|new) lines|"
        r"lignes? (de plus|supplementaires?|additionnelles?)|is (this|it) (legit|real|from you)|legit\w*|fake|"
        r"faux courriel|usurp\w*|no need to (reply|respond)|pas besoin de (repondre|me repondre))\b"
    ),
    "users": re.compile(
        r"\b(users?|log ?in|logging in|locked out|password|username|sign in|access|manage users|permissions?|"
        r"utilisat\w*|acces|gerer les utilisateurs|identifiant|mot de passe|connecter|connexion|verrouill\w*)\b"
    ),
}


@dataclass(frozen=True)
class TopicDecision:
    """The queue of a mail, the article it matches (if any) and how sure the model is."""

    queue: str
    article_id: str | None
    confidence: float
    reason: str


TRAINING_DIR = Path(__file__).parent / "data"
QUEUE_LABEL = "queue:"


@dataclass(frozen=True)
class TrainingMail:
    """A customer mail written for training, labelled with its queue only (no FAQ article answers it)."""

    queue: str
    text: str


def load_training_mail(directory: Path = TRAINING_DIR) -> list[TrainingMail]:
    """The queue-labelled mails of ``mailroom/data/training_*.yml`` (``{queue: [{subject, body}]}``)."""
    mails: list[TrainingMail] = []
    for path in sorted(directory.glob("training_*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for queue, entries in data.items():
            if queue not in QUEUES:
                raise ValueError(f"{path}: {queue!r} is not a queue ({', '.join(QUEUES)})")
            mails.extend(TrainingMail(queue, f"{entry['subject']}\n{entry['body']}".strip()) for entry in entries)
    return mails


def training_fingerprint(articles: list[Article], directory: Path = TRAINING_DIR) -> str:
    """A hash of the articles' phrasings and queues and of the training mail files: the cache key of the trained
    model (the files are hashed as they are: they are parsed only when the model must be trained)."""
    digest = hashlib.sha256()
    for article in sorted(articles, key=lambda a: a.id):
        digest.update(f"{article.id}|{article.queue}".encode())
        for language in sorted(article.questions):
            for question in article.questions[language]:
                digest.update(question.encode())
    for path in sorted(directory.glob("training_*.yml")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


class MailTopics:
    """Classifies mail text into an article and a queue."""

    def __init__(self, model: TopicModel, articles: dict[str, Article]) -> None:
        self._model = model
        self._articles = articles

    @classmethod
    def load_or_train(cls, articles: list[Article], cache_dir: Path) -> MailTopics:
        """The cached model for these articles and the training mail, trained and cached first if there is none.

        Labels are the articles (their phrasings, whose queue is the article's) and, for the training mail,
        ``queue:<name>``: mail is wider than the FAQ, and a queue's own mail teaches what no article says."""
        directory = cache_dir / f"topics-{training_fingerprint(articles)}"
        remove_stale_temporaries(directory)
        model: TopicModel | None
        try:
            model = TopicModel.load(directory)
        except FileNotFoundError:
            model = None
        except CorruptModel as error:  # a crash mid-write by an older version, a damaged disk: train again
            logger.warning("the cached mail topic model is damaged (%s); training it again", error)
            model = None
        if model is None:
            mails = load_training_mail()
            texts = [q for a in articles for qs in a.questions.values() for q in qs] + [m.text for m in mails]
            labels = [a.id for a in articles for qs in a.questions.values() for _ in qs]
            labels += [QUEUE_LABEL + m.queue for m in mails]
            model = TopicModel.train(texts, labels, TopicModelConfig(regularization=10.0))
            model.save(directory)  # atomically: a crash meanwhile leaves no cache, never half of one
        return cls(model, {a.id: a for a in articles})

    def queue_of(self, label: str) -> str:
        """The queue of a model label: an article's, or the one a training mail was labelled with."""
        return label[len(QUEUE_LABEL):] if label.startswith(QUEUE_LABEL) else self._articles[label].queue

    def classify(self, subject: str, body: str, language: str = "en") -> TopicDecision:
        """The queue and article of a mail's subject and new text, written in ``language``."""
        text = f"{subject}\n{body}".strip()
        if not text:
            return TopicDecision("general", None, 0.0, "empty mail: queue general")
        if is_courtesy(subject, body, language):
            return TopicDecision("general", None, 0.0, "a thank-you note: queue general")
        whole = self._model.rank(text[:1500])
        scores: dict[str, float] = {}
        for label, probability in whole:
            queue = self.queue_of(label)
            scores[queue] = scores.get(queue, 0.0) + probability
        folded = fold_accents(text.lower())
        hits = {name: len(pattern.findall(folded)) for name, pattern in QUEUE_KEYWORDS.items()}
        total = sum(hits.values())
        if total >= KEYWORDS_MIN:
            for name, count in hits.items():
                scores[name] = scores.get(name, 0.0) + KEYWORD_WEIGHT * count / total
        queue = max(scores, key=lambda name: scores[name])
        # The FAQ article answering the mail: the most likely article, if likely enough and of the chosen queue.
        article_id, probability = next(((label, p) for label, p in whole if label in self._articles), ("", 0.0))
        article = article_id if probability >= TOPIC_CONFIDENCE and self._articles[article_id].queue == queue else None
        words = f", {hits.get(queue, 0)} of its {total} queue keywords" if total >= KEYWORDS_MIN else ""
        top, top_probability = whole[0]
        return TopicDecision(queue, article, probability,
                             f"queue {queue} ({scores[queue]:.2f}): {top} ({top_probability:.2f}){words}")


_THANKS = re.compile(r"\b(thanks?|thank you|thx|appreciated?|merci|remercie\w*|apprecie)\b")
_REQUEST = re.compile(
    r"\b(please|could|can|need|would|pls|in advance|svp|pouvez|pourriez|peux|besoin|voudrais|aimerais|d'avance|"
    r"a l'avance|bien vouloir)\b"
)
# Between "merci de" and its verb: "Merci de bien vouloir nous envoyer", "merci de me la faire parvenir".
_BEFORE_VERB = {"bien", "vouloir", "me", "m'", "nous", "la", "le", "les", "l'", "lui", "leur", "en", "y", "svp", "s'il"}


def is_courtesy(subject: str, body: str, language: str = "en") -> bool:
    """A short note that only thanks: no question or request in its subject or its text. In French a thanks
    followed by an infinitive is a polite request ("Merci de faire le paiement"), not a thank-you."""
    folded = fold_accents(body.lower())
    if not body or len(body.split()) > 25 or "?" in body or "?" in subject or not _THANKS.search(folded):
        return False
    if _REQUEST.search(folded) or _REQUEST.search(fold_accents(subject.lower())):
        return False
    return not (language == "fr" and asks_politely(body))


def asks_politely(text: str) -> bool:
    """Whether a French thanks asks for something: "merci de" / "je vous remercie de" and a verb in the
    infinitive ("Merci de faire le paiement"), not a thanks for what was done ("merci de m'avoir répondu", "merci
    de votre aide")."""
    doc = pipeline("fr", statistical=True)(text)  # the French model's morphology: which verb is an infinitive
    for index, token in enumerate(doc):
        if token.lower_ not in ("merci", "remercie", "remercions") or index + 1 >= len(doc):
            continue
        rest = [t for t in doc[index + 1:index + 7] if t.lower_ not in ("de", "d'", "d’", "vous", "par", "avance")]
        rest = [t for t in rest if t.lower_ not in _BEFORE_VERB] or [doc[index + 1]]
        verb = rest[0]
        if "Inf" in verb.morph.get("VerbForm", []) and verb.lemma_ not in ("avoir", "être"):
            return True
    return False
