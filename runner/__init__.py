"""Starts and supervises the project's processes for ``make run`` (``python -m runner``)."""
