"""Custom Rasa NLU graph components (listed in ``config.yml`` by module path)."""
