"""Shared core of the billing-support assistant.

Settings, errors, language detection, text normalisation, the knowledge base and the database live here.
Channels (the Rasa action server in ``bot/``, the mailroom, the console) import this package; it imports none
of them.
"""
