"""The action server (rasa-sdk): thin actions, one module per capability.

Each action adapts the tracker, calls the shared core and returns events. Replies go by response key so the
domain's language variations apply. Run with ``rasa run actions --actions bot.actions``.
"""
