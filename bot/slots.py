"""The names of the domain's slots that code reads or sets (``domain.yml`` declares them)."""

LANGUAGE_SLOT = "language"  # the conversation's language, "en" or "fr": chooses every response variation
