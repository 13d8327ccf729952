"""The Rasa side of the assistant: NLU components, policies, the tracker store, build tools and actions."""
