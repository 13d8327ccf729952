"""The pipeline's filters, one module each; ``mailroom.pipeline`` puts them in order."""
