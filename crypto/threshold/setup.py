"""The public record of one threshold setup, and the arithmetic both holders and combiners use.

:class:`ThresholdSetup` is public (its digest goes into the market's terms): the parameters (holders, k),
the output encoding the shares decrypt (key id, LWE dimension, width, signedness, value count), the
modulus-switch width and a random setup id that binds every holder file and share blob to this dealing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crypto.encoding import canonical_bytes, canonical_loads, digest
from crypto.errors import EncodingError
from crypto.threshold.concrete_lwe import OutputEncoding, decode_phase
from crypto.threshold.errors import ThresholdSetupError
from crypto.threshold.params import ThresholdParams, switch_bits

__all__ = ["ThresholdSetup", "switch_down", "table_dtype"]

_FORMAT = "repo-market-threshold-setup-v1"


def switch_down(values, bits: int) -> np.ndarray:
    """Round u64 values of Z_2^64 to Z_2^bits: ``round(x / 2^(64 − bits)) mod 2^bits`` (wrapping is exact)."""
    values = np.asarray(values, dtype=np.uint64)
    shift = 64 - bits
    return (((values + np.uint64(1 << (shift - 1))) >> np.uint64(shift)) & np.uint64((1 << bits) - 1))


def table_dtype(width: int):
    """Table entries live in Z_2^(p+1) (concrete's decoded value includes the padding bit)."""
    return np.uint8 if width + 1 <= 8 else np.uint16


@dataclass(frozen=True)
class ThresholdSetup:
    params: ThresholdParams
    encoding: OutputEncoding
    setup_id: bytes  # 32 random bytes drawn by the dealer

    def __post_init__(self):
        if type(self.setup_id) is not bytes or len(self.setup_id) != 32:
            raise ThresholdSetupError("setup_id: expected 32 bytes")

    @property
    def switch_bits(self) -> int:
        return switch_bits(self.encoding.width, self.params.share_count)

    @property
    def table_modulus(self) -> int:
        return 1 << (self.encoding.width + 1)

    def decode_table(self, mask: int) -> np.ndarray:
        """T_r[c] = decode(c − r) for every c ∈ Z_2^k, as concrete decodes (in Z_2^(p+1))."""
        k = self.switch_bits
        shifted = ((np.arange(1 << k, dtype=np.uint64) - np.uint64(mask)) & np.uint64((1 << k) - 1)) << np.uint64(64 - k)
        return decode_phase(shifted, self.encoding.width).astype(table_dtype(self.encoding.width))

    def as_dict(self) -> dict:
        return {"format": _FORMAT, "params": self.params.as_dict(), "encoding": self.encoding.as_dict(),
                "switch_bits": self.switch_bits, "setup_id": self.setup_id}

    def to_bytes(self) -> bytes:
        return canonical_bytes(self.as_dict(), name="threshold setup")

    def digest(self) -> bytes:
        """SHA-256 of :meth:`to_bytes`: what the terms on chain commit to."""
        return digest(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> "ThresholdSetup":
        try:
            record = canonical_loads(bytes(data), name="threshold setup")
            if record.get("format") != _FORMAT:
                raise ThresholdSetupError(f"threshold setup: format {record.get('format')!r}, expected {_FORMAT!r}")
            params = ThresholdParams(tuple(record["params"]["holders"]), record["params"]["threshold"])
            e = record["encoding"]
            encoding = OutputEncoding(e["key_id"], e["lwe_dimension"], e["width"], e["is_signed"], tuple(e["shape"]))
            setup = cls(params, encoding, record["setup_id"])
        except (EncodingError, KeyError, TypeError, AttributeError) as error:
            raise ThresholdSetupError(f"threshold setup: unreadable record ({type(error).__name__}: {error})") from None
        if setup.to_bytes() != bytes(data) or record["switch_bits"] != setup.switch_bits:
            raise ThresholdSetupError("threshold setup: record is not in canonical form or its switch width differs")
        return setup
