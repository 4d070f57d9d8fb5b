"""A key holder: answers once per one-time slot, first with its mask share, then with its table share.

Per slot, a holder (1) binds the slot to a round and an output ciphertext the first time it answers (a
0600 ``slots/<slot>.spent`` record), and refuses the slot for any other round or ciphertext afterwards:
opening two phases with one mask would reveal their difference; (2) gives its table share only for the c
it recomputes itself from k or more mask blobs, checking the shares it keeps against its own values; then
it deletes the slot's secrets, so the slot can never be used again and a later break-in finds no mask.

Which round and ciphertext a holder may answer for is the protocol's decision (the output digest k
evaluators agreed on chain); this module enforces "once per slot" and the binding.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crypto.encoding import to_hex
from crypto.threshold.concrete_lwe import OutputCiphertexts, read_output
from crypto.threshold.dealer import (
    KEY_FILE, SETUP_FILE, _KEY_MAGIC, _SLOT_MAGIC, destroy_file, read_secret_record, slot_path, write_secret_record,
)
from crypto.threshold.errors import HolderFileError, SlotSpentError, WrongCiphertextError
from crypto.threshold.setup import ThresholdSetup, switch_down, table_dtype
from crypto.threshold.shares import ShareBlob, _check_output, open_mask

__all__ = ["KeyHolder"]

_SPENT_MAGIC = b"RMTHSPT1"


class KeyHolder:
    """One holder's key shares (loaded from its folder); slot material is read per request."""

    def __init__(self, folder: Path, setup: ThresholdSetup, holder: str, key_shares: dict):
        self.folder, self.setup, self.holder = Path(folder), setup, holder
        self._key_shares = key_shares

    def __repr__(self) -> str:
        return f"KeyHolder({self.holder!r}, setup={to_hex(self.setup.setup_id)[:16]}…, folder={str(self.folder)!r})"

    def __reduce__(self):  # never pickle key shares into caches
        raise TypeError("KeyHolder holds key shares and cannot be pickled")

    @classmethod
    def load(cls, folder: Path, holder: str, *, setup_digest: bytes | None = None) -> "KeyHolder":
        """Load ``holder``'s shares; ``setup_digest`` (e.g. from the terms on chain) must match the local record."""
        folder = Path(folder)
        if folder.is_dir() and folder.stat().st_mode & 0o077:
            raise HolderFileError(f"{folder}: holder folder has mode {oct(folder.stat().st_mode & 0o777)}; needs 0700")
        try:
            setup = ThresholdSetup.from_bytes((folder / SETUP_FILE).read_bytes())
        except FileNotFoundError:
            raise HolderFileError(f"{folder / SETUP_FILE}: missing") from None
        if setup_digest is not None and setup.digest() != bytes(setup_digest):
            raise HolderFileError(f"{folder / SETUP_FILE}: setup {to_hex(setup.digest())[:16]}… is not the published "
                                  f"{to_hex(bytes(setup_digest))[:16]}…")
        record = read_secret_record(folder / KEY_FILE, _KEY_MAGIC)
        if record.get("setup") != setup.setup_id or record.get("holder") != holder:
            raise HolderFileError(f"{folder / KEY_FILE}: belongs to holder {record.get('holder')!r} of another setup or "
                                  f"holder, not {holder!r}")
        expected = setup.params.shares_of(holder)
        shares = {}
        for j in expected:
            raw = record["shares"].get(str(j))
            if type(raw) is not bytes or len(raw) != 8 * setup.encoding.lwe_dimension:
                raise HolderFileError(f"{folder / KEY_FILE}: share {j} missing or of the wrong length")
            shares[j] = np.frombuffer(raw, dtype="<u8").astype(np.uint64)
        if set(record["shares"]) != {str(j) for j in expected}:
            raise HolderFileError(f"{folder / KEY_FILE}: carries shares {sorted(record['shares'])}, expected {list(expected)}")
        return cls(folder, setup, holder, shares)

    # one-time slots ---------------------------------------------------------------------------------------

    def _spent_path(self, slot: int) -> Path:
        return slot_path(self.folder, slot).with_suffix(".spent")

    def _bind(self, cts: OutputCiphertexts, round_: int, slot: int) -> dict | None:
        """The slot's existing binding, after checking it is this round and ciphertext (else refuse)."""
        spent = self._spent_path(slot)
        if not spent.exists():
            return None
        record = read_secret_record(spent, _SPENT_MAGIC)
        if record["round"] != round_ or record["ciphertext"] != cts.digest:
            raise SlotSpentError(f"holder {self.holder}, round {round_}: slot {slot} is spent on round {record['round']} "
                                 f"(ciphertext {to_hex(record['ciphertext'])[:16]}…); slots are never reused")
        return record

    def _slot(self, slot: int, round_: int) -> dict:
        path = slot_path(self.folder, slot)
        if not path.exists():
            raise SlotSpentError(f"holder {self.holder}, round {round_}: slot {slot} is spent or was never dealt")
        record = read_secret_record(path, _SLOT_MAGIC)
        if record.get("setup") != self.setup.setup_id or record.get("holder") != self.holder or record.get("slot") != slot:
            raise HolderFileError(f"{path}: belongs to another setup, holder or slot")
        return record

    def mask_share(self, output_value, *, round: int, slot: int, authorised: bytes | None = None) -> bytes:
        """The holder's mask blob for this output (a serialized ``fhe.Value``, or its :func:`read_output`);
        binds the slot on first use. ``authorised``: the SHA-256 of the output value the chain authorised for
        this round; any other output is refused before anything is computed or bound."""
        cts = self._authorised(output_value, round, authorised)
        _check_output(self.setup, cts)
        binding = self._bind(cts, round, slot)
        if binding is not None and binding["stage"] == "table":
            raise SlotSpentError(f"holder {self.holder}, round {round}: slot {slot} already opened; slots are one-time")
        record = self._slot(slot, round)
        values = self._masked_partials(cts, record)
        if binding is None:
            write_secret_record(self._spent_path(slot), _SPENT_MAGIC,
                                {"slot": slot, "round": round, "ciphertext": cts.digest, "stage": "mask", "blob": b""})
        return ShareBlob("mask", self.setup.setup_id, self.holder, round, cts.digest, slot,
                         np.zeros(0, dtype=np.uint32), values).to_bytes()

    def _masked_partials(self, cts: OutputCiphertexts, record: dict) -> dict:
        k = self.setup.switch_bits
        values = {}
        for j, key in self._key_shares.items():
            with np.errstate(over="ignore"):
                inner = (cts.a * key).sum(axis=1, dtype=np.uint64)
            mask = np.frombuffer(record["masks"][str(j)], dtype="<u4").astype(np.uint64)
            values[j] = ((mask - switch_down(inner, k)) & np.uint64((1 << k) - 1)).astype(np.uint32)
        return values

    def table_share(self, output_value, mask_blobs, *, round: int, slot: int, senders=None,
                    authorised: bytes | None = None) -> bytes:
        """The holder's table blob for the c that ``mask_blobs`` (k or more, checked) open; then the slot is gone."""
        cts = self._authorised(output_value, round, authorised)
        _check_output(self.setup, cts)
        binding = self._bind(cts, round, slot)
        if binding is not None and binding["stage"] == "table":
            return binding["blob"]  # the same answer again (a retransmission), never a second lookup
        record = self._slot(slot, round)
        own = self._masked_partials(cts, record)
        opening = open_mask(self.setup, cts, mask_blobs, round=round, slot=slot, strict=False, senders=senders,
                            own=(self.holder, own))
        dtype = table_dtype(self.setup.encoding.width)
        size = 1 << self.setup.switch_bits
        values = {}
        for j in self._key_shares:
            table = np.frombuffer(record["tables"][str(j)], dtype=dtype).reshape(self.setup.encoding.count, size)
            values[j] = table[np.arange(self.setup.encoding.count), opening.c.astype(np.int64)].astype(np.uint32)
        blob = ShareBlob("table", self.setup.setup_id, self.holder, round, cts.digest, slot, opening.c,
                         values).to_bytes()
        write_secret_record(self._spent_path(slot), _SPENT_MAGIC,
                            {"slot": slot, "round": round, "ciphertext": cts.digest, "stage": "table", "blob": blob},
                            overwrite=True)
        destroy_file(slot_path(self.folder, slot))
        return blob

    def _authorised(self, output_value, round_: int, authorised: bytes | None) -> OutputCiphertexts:
        cts = _as_output(output_value)
        if authorised is not None and cts.digest != bytes(authorised):
            raise WrongCiphertextError(self.holder, round_, f"output {to_hex(cts.digest)[:16]}… is not the authorised "
                                       f"{to_hex(bytes(authorised))[:16]}…; refusing to answer")
        return cts

    def slots_left(self) -> list[int]:
        return sorted(int(p.stem) for p in (self.folder / "slots").glob("*.slot"))




def _as_output(output_value) -> OutputCiphertexts:
    return output_value if isinstance(output_value, OutputCiphertexts) else read_output(output_value)
