"""The mailroom: the billing@ inboxes over IMAP (or a local Maildir), each mail triaged into a ticket.

fetch (``imap``, ``maildir``) → parse (``parse``) → filters (``filters``, ordered in ``pipeline``) → store
(``store``: ticket, messages, outbox, committed together) → flag on the server → send (``outbox``).
"""
