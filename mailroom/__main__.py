"""``python -m mailroom``: see ``mailroom.cli``."""

import sys

from mailroom.cli import main

if __name__ == "__main__":  # guarded: the mailroom's reader processes import this module again
    sys.exit(main())
