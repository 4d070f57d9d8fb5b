"""The replay cache: one accepted envelope per binding."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from common import strict_json
from crypto.encoding import constant_time_equal, from_hex, to_hex
from crypto.errors import ReplayError
from crypto.identity import write_public_file

if TYPE_CHECKING:
    from crypto.envelope.binding import Binding


class ReplayCache:
    """Accepted envelopes per binding: a second envelope for the same binding is a replay.

    In memory, or persisted to ``path`` (JSON ``{binding key: envelope digest}``, public data only,
    written atomically) so a restarted custodian still rejects replays. One envelope per binding
    [decided]: a role sends one message per purpose and round; a different envelope for an already-used
    binding is refused too, so a message cannot be swapped after it was accepted.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._seen: dict[str, str] = {}
        if self._path is not None and self._path.exists():
            data = strict_json.loads(self._path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()
            ):
                raise ValueError(f"{self._path}: not a replay cache (expected {{binding key: digest hex}})")
            self._seen = dict(data)

    def check(self, binding: Binding, envelope_digest: bytes) -> None:
        """Raise :class:`ReplayError` if ``binding`` already has an accepted envelope."""
        previous = self._seen.get(binding.key)
        if previous is None:
            return
        if constant_time_equal(from_hex(previous, name="cached digest"), envelope_digest):
            raise ReplayError(f"envelope {to_hex(envelope_digest)[:16]} was already accepted ({binding.describe()})")
        raise ReplayError(
            f"another envelope ({previous[:16]}) was already accepted for {binding.describe()}; one per binding"
        )

    def record(self, binding: Binding, envelope_digest: bytes) -> None:
        """Check, then remember ``envelope_digest`` for ``binding`` (persisted before returning)."""
        self.check(binding, envelope_digest)
        seen = {**self._seen, binding.key: to_hex(envelope_digest)}
        if self._path is not None:
            text = json.dumps(seen, indent=1, sort_keys=True) + "\n"
            write_public_file(self._path, text.encode("utf-8"), overwrite=True)
        self._seen = seen

    def accepted(self, binding: Binding) -> bytes | None:
        """The digest of the envelope accepted for ``binding``, if any: lets a restarted caller tell
        "I accepted exactly this envelope before crashing" (resume) from a replay."""
        previous = self._seen.get(binding.key)
        return None if previous is None else from_hex(previous, name="cached digest", length=32)

    def __contains__(self, binding: Binding) -> bool:
        return binding.key in self._seen

    def __len__(self) -> int:
        return len(self._seen)
