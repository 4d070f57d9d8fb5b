"""Threshold decryption of concrete outputs: k-of-n key holders open only the decoded message.

* :mod:`~crypto.threshold.concrete_lwe` reads concrete's serialized outputs and keyset as plain LWE;
* :mod:`~crypto.threshold.dealer` splits the key (replicated additive sharing over Z_2^64) and deals one-time
  mask-then-open slots (one-time truth tables);
* :mod:`~crypto.threshold.holder` answers once per slot; :mod:`~crypto.threshold.shares` checks and combines blobs.

Design, security statement and limits: docs/THRESHOLD.md.
"""
from crypto.threshold.concrete_lwe import (
    ConcreteLayoutError, OutputCiphertexts, OutputEncoding, decode_phase, lwe_phase, read_output,
    read_output_encoding, read_secret_key, to_signed,
)
from crypto.threshold.dealer import deal_key, deal_secret_key, deal_slots, destroy_file
from crypto.threshold.errors import *  # noqa: F401,F403 - one type per refusal
from crypto.threshold.errors import __all__ as _errors
from crypto.threshold.holder import KeyHolder
from crypto.threshold.params import PARAMETER_SETS, ThresholdParams, margin, switch_bits
from crypto.threshold.setup import ThresholdSetup
from crypto.threshold.shares import Decryption, Opening, ShareBlob, combine, open_mask

__all__ = [
    "ConcreteLayoutError", "OutputCiphertexts", "OutputEncoding", "decode_phase", "lwe_phase", "read_output",
    "read_output_encoding", "read_secret_key", "to_signed", "deal_key", "deal_secret_key", "deal_slots", "destroy_file", "KeyHolder",
    "PARAMETER_SETS", "ThresholdParams", "margin", "switch_bits", "ThresholdSetup", "Decryption", "Opening",
    "ShareBlob", "combine", "open_mask", *_errors,
]
