"""Shared body of a subcommand whose issue has not landed yet: says so and exits non-zero."""
from __future__ import annotations

import json
import sys


def not_built(name: str, issue: str, as_json: bool) -> int:
    message = f"repo-market {name}: not built yet (tracked in {issue})"
    if as_json:
        print(json.dumps({"error": "not_built", "command": name, "detail": message}))
    else:
        print(message, file=sys.stderr)
    return 3
