"""``python -m protocol``: the ``repo-market`` command line (protocol/entry.py)."""
import sys

from protocol.entry import main

if __name__ == "__main__":  # importing the module (a package walk) runs nothing
    sys.exit(main())
