"""Share blobs and their combination: anyone (a holder, the auditor) opens c and then the message.

Two kinds of blob per holder and decryption, both self-describing and hashed (post the digest on chain,
the blob in the blobstore)::

    blob = "RMTHSHR1" ‖ SHA-256(body) ‖ body
    body = canonical {kind: "mask" | "table", setup: setup id, holder, round, ciphertext: SHA-256 of the
                      serialized output value, slot, opened: c as u32 LE (table blobs; empty for mask),
                      values: {share index: u32 LE per value (mask) | table entries (table)}}

* ``mask``: for each additive share j the holder keeps, ``d_j = r_j − switch_k(⟨a, s_j⟩) mod 2^k`` per value;
  ``c = switch_k(b) + Σ_j d_j = switch_k(phase) + r (mod 2^k)`` up to the rounding budget.
* ``table``: for each share j it keeps, ``T_j[c]`` per value; ``Σ_j T_j[c] = decode(c − r)`` = the message.

Each share j reaches the combiner from every present holder that keeps it; copies must agree, else
:class:`InconsistentSharesError` (nothing opens).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crypto.encoding import canonical_bytes, canonical_loads, digest, to_hex
from crypto.errors import EncodingError
from crypto.threshold.concrete_lwe import ConcreteLayoutError, OutputCiphertexts, to_signed
from crypto.threshold.errors import (
    DuplicateShareError, InconsistentSharesError, MalformedShareError, ShareRefused, TooFewSharesError,
    TruncatedShareError, UnregisteredHolderError, WrongCiphertextError, WrongOpeningError, WrongRoundError,
    WrongSlotError,
)
from crypto.threshold.setup import ThresholdSetup, switch_down

__all__ = ["ShareBlob", "Opening", "Decryption", "open_mask", "combine", "MAGIC"]

MAGIC = b"RMTHSHR1"
KINDS = ("mask", "table")
MAX_BLOB_BYTES = 1 << 24


@dataclass(frozen=True)
class ShareBlob:
    kind: str
    setup_id: bytes
    holder: str
    round: int
    ciphertext: bytes
    slot: int
    opened: np.ndarray  # c per value (table blobs); empty for mask blobs
    values: dict  # share index -> np.ndarray (u32 masks, or table entries)

    def to_bytes(self) -> bytes:
        body = canonical_bytes({
            "kind": self.kind, "setup": self.setup_id, "holder": self.holder, "round": self.round,
            "ciphertext": self.ciphertext, "slot": self.slot,
            "opened": np.asarray(self.opened, dtype="<u4").tobytes(),
            "values": {str(j): np.asarray(v).astype("<u4" if self.kind == "mask" else "<u2").tobytes()
                       for j, v in sorted(self.values.items())},
        }, name="share")
        return MAGIC + digest(body) + body

    @classmethod
    def parse(cls, setup: ThresholdSetup, blob: bytes, *, sender: str | None = None) -> "ShareBlob":
        """Parse and check a blob against ``setup`` (holder registered, share indices, counts, ranges).

        ``sender`` (who posted it, if the caller knows) names the holder when the blob is too broken to say.
        Round, ciphertext and slot are checked by the combiner, which knows what it expects.
        """
        if not isinstance(blob, (bytes, bytearray)) or len(blob) > MAX_BLOB_BYTES:
            raise TruncatedShareError(sender, None, "not a byte string of at most 16 MiB")
        blob = bytes(blob)
        head = len(MAGIC) + 32
        if len(blob) < head or not blob.startswith(MAGIC):
            raise TruncatedShareError(sender, None, f"not a share blob ({len(blob)} bytes, bad header)")
        body = blob[head:]
        if digest(body) != blob[len(MAGIC) : head]:
            raise TruncatedShareError(sender, None, f"body does not match its SHA-256 ({len(blob)} bytes: truncated or corrupt)")
        try:
            record = canonical_loads(body, name="share")
            kind, holder, round_, slot = record["kind"], record["holder"], record["round"], record["slot"]
            setup_id, ciphertext, opened, values = record["setup"], record["ciphertext"], record["opened"], record["values"]
        except (EncodingError, KeyError, TypeError) as error:
            raise TruncatedShareError(sender, None, f"body does not parse ({type(error).__name__})") from None
        round_shown = round_ if type(round_) is int else None
        if type(holder) is not str or holder not in setup.params.holders:
            raise UnregisteredHolderError(holder if type(holder) is str else sender, round_shown,
                                          f"holder {holder!r} is not registered (holders: {', '.join(setup.params.holders)})")
        if sender is not None and sender != holder:
            raise MalformedShareError(sender, round_shown, f"blob claims holder {holder}, but {sender} posted it")
        bad = lambda reason: MalformedShareError(holder, round_shown, reason)  # noqa: E731
        if kind not in KINDS:
            raise bad(f"kind {kind!r} is not one of {KINDS}")
        if type(round_) is not int or round_ < 0 or type(slot) is not int or slot < 0:
            raise bad(f"round {round_!r} / slot {slot!r} are not non-negative integers")
        if setup_id != setup.setup_id:
            raise bad(f"blob is for threshold setup {to_hex(bytes(setup_id))[:16] if isinstance(setup_id, bytes) else setup_id!r}…, "
                      f"not {to_hex(setup.setup_id)[:16]}…")
        if type(ciphertext) is not bytes or len(ciphertext) != 32 or type(opened) is not bytes or type(values) is not dict:
            raise bad("ciphertext digest, opened values or share values have the wrong type")
        count, k = setup.encoding.count, setup.switch_bits
        expected = {str(j) for j in setup.params.shares_of(holder)}
        if set(values) != expected:
            raise bad(f"carries shares {sorted(values)}, holder {holder} keeps shares {sorted(expected)}")
        if kind == "mask":
            if opened:
                raise bad("a mask blob carries opened values")
            opened_values = np.zeros(0, dtype=np.uint32)
            limit, item = 1 << k, "<u4"
        else:
            if len(opened) != 4 * count:
                raise bad(f"opened values: {len(opened)} bytes, expected {4 * count}")
            opened_values = np.frombuffer(opened, dtype="<u4").astype(np.uint32)
            if np.any(opened_values >= 1 << k):
                raise bad(f"an opened value is outside Z_2^{k}")
            limit, item = setup.table_modulus, "<u2"
        parsed = {}
        for j, raw in values.items():
            size = np.dtype(item).itemsize
            if type(raw) is not bytes or len(raw) != size * count:
                raise bad(f"share {j}: {len(raw) if isinstance(raw, bytes) else type(raw).__name__} bytes, expected {size * count}")
            array = np.frombuffer(raw, dtype=item).astype(np.uint32)
            if np.any(array >= limit):
                raise bad(f"share {j}: a value is outside Z_{limit}")
            parsed[int(j)] = array
        return cls(kind, bytes(setup_id), holder, round_, ciphertext, slot, opened_values, parsed)


@dataclass
class Opening:
    """The opened masked phases c (public, uniform given the mask) and the holders that gave them."""

    c: np.ndarray
    holders: tuple[str, ...]
    refused: list = field(default_factory=list)


@dataclass
class Decryption:
    """The decrypted output values (concrete's decoding, signed if the output is signed)."""

    values: np.ndarray
    opening: Opening
    holders: tuple[str, ...]
    refused: list = field(default_factory=list)


def _admit(setup, cts, blobs, *, kind, round_, slot, strict, senders):
    """Parse blobs, refuse the ones for another round/ciphertext/slot, duplicates; keep one per holder."""
    kept, refused = {}, []
    for index, blob in enumerate(blobs):
        sender = senders[index] if senders else None
        try:
            share = ShareBlob.parse(setup, blob, sender=sender)
            if share.kind != kind:
                raise MalformedShareError(share.holder, share.round, f"a {share.kind} share where a {kind} share was expected")
            if share.round != round_:
                raise WrongRoundError(share.holder, share.round, f"share is for round {share.round}, not round {round_}")
            if share.ciphertext != cts.digest:
                raise WrongCiphertextError(share.holder, share.round, f"share is for ciphertext {to_hex(share.ciphertext)[:16]}…, "
                                           f"not {to_hex(cts.digest)[:16]}…")
            if share.slot != slot:
                raise WrongSlotError(share.holder, share.round, f"share uses slot {share.slot}, round {round_} uses slot {slot}")
            if share.holder in kept:
                raise DuplicateShareError(share.holder, share.round, f"a second {kind} share from {share.holder}")
            kept[share.holder] = share
        except ShareRefused as refusal:
            if strict:
                raise
            refused.append(refusal)
    if len(kept) < setup.params.threshold:
        reasons = "; ".join(str(r) for r in refused)
        raise TooFewSharesError(f"round {round_}: {len(kept)} valid {kind} shares, {setup.params.threshold} needed "
                                f"(of {', '.join(setup.params.holders)}){': ' + reasons if reasons else ''}; nothing opened")
    return kept, refused


def _agree(setup, kept, *, kind, round_, trusted: tuple | None = None):
    """One value per share index; every copy must agree. ``trusted``: ``(holder, its own values)``: it blames others."""
    chosen, conflicts = {}, []
    for j in range(setup.params.share_count):
        copies = {h: s.values[j] for h, s in kept.items() if j in s.values}
        if trusted is not None and j in trusted[1]:
            copies = copies | {trusted[0]: trusted[1][j]}
        if not copies:  # cannot happen with k holders (every share is kept by every holder outside a (k−1)-set)
            raise TooFewSharesError(f"round {round_}: no holder sent share {j}")
        first = next(iter(copies.values()))
        differing = [h for h, v in copies.items() if not np.array_equal(v, first)]
        if differing:
            conflicts.append((j, tuple(sorted(copies)), _outside_majority(copies)))
        chosen[j] = first
    if conflicts:
        shown = [(j, holders) for j, holders, _ in conflicts]
        if trusted is not None:
            # the caller's own values are right: every holder disagreeing with them cheated
            name, own = trusted
            blamed = sorted({h for j, holders, _ in conflicts for h in holders
                             if h != name and j in own and not np.array_equal(kept[h].values[j], own[j])})
            if blamed:
                raise InconsistentSharesError(round_, kind, shown, tuple(blamed), blamed[0] if len(blamed) == 1 else None)
        # Public attribution [derived]: with k = 2 at most one holder cheats, so it is in every conflict (and
        # outside any agreeing pair): a unique common suspect is the cheater. Otherwise only the suspects are named.
        sets = [suspects for _, _, suspects in conflicts]
        common = set.intersection(*sets)
        attributed = next(iter(common)) if len(common) == 1 and setup.params.threshold == 2 else None
        raise InconsistentSharesError(round_, kind, shown, tuple(sorted(common or set().union(*sets))), attributed)
    return chosen


def _outside_majority(copies: dict) -> set:
    """Holders outside the largest group of agreeing copies, if that group has two or more; else all of them."""
    groups: list[list[str]] = []
    for holder, value in copies.items():
        for group in groups:
            if np.array_equal(copies[group[0]], value):
                group.append(holder)
                break
        else:
            groups.append([holder])
    groups.sort(key=len, reverse=True)
    if len(groups[0]) >= 2 and len(groups[0]) > len(groups[1]):
        return {h for group in groups[1:] for h in group}
    return set(copies)


def open_mask(setup: ThresholdSetup, cts: OutputCiphertexts, mask_blobs, *, round: int, slot: int,
              strict: bool = True, senders=None, own: tuple | None = None) -> Opening:
    """c = switch_k(b) + Σ_j d_j (mod 2^k) from k or more mask blobs (checked, cross-checked)."""
    _check_output(setup, cts)
    kept, refused = _admit(setup, cts, mask_blobs, kind="mask", round_=round, slot=slot, strict=strict, senders=senders)
    chosen = _agree(setup, kept, kind="mask", round_=round, trusted=own)
    k = setup.switch_bits
    total = switch_down(cts.b, k).astype(np.uint64)
    for values in chosen.values():
        total = total + values.astype(np.uint64)
    return Opening((total & np.uint64((1 << k) - 1)).astype(np.uint32), tuple(sorted(kept)), refused)


def combine(setup: ThresholdSetup, cts: OutputCiphertexts, mask_blobs, table_blobs, *, round: int, slot: int,
            strict: bool = True, mask_senders=None, table_senders=None) -> Decryption:
    """The message from k or more table blobs, after re-opening c from the mask blobs (anyone can run this).

    ``strict``: raise the first refusal; otherwise set refused blobs aside (listed in ``refused``) and open
    from the valid ones, never from fewer than k. ``*_senders``: who posted each blob, when known."""
    opening = open_mask(setup, cts, mask_blobs, round=round, slot=slot, strict=strict, senders=mask_senders)
    kept, refused = _admit(setup, cts, table_blobs, kind="table", round_=round, slot=slot, strict=False,
                           senders=table_senders)
    for holder, share in list(kept.items()):
        if not np.array_equal(share.opened, opening.c):
            refusal = WrongOpeningError(holder, round, "table share answers for another opened c than the mask shares give")
            if strict:
                raise refusal
            refused.append(refusal)
            del kept[holder]
    if strict and refused:
        raise refused[0]
    if len(kept) < setup.params.threshold:
        raise TooFewSharesError(f"round {round}: {len(kept)} valid table shares, {setup.params.threshold} needed; nothing opened")
    chosen = _agree(setup, kept, kind="table", round_=round)
    total = np.zeros(setup.encoding.count, dtype=np.int64)
    for values in chosen.values():
        total = total + values.astype(np.int64)
    message = total % setup.table_modulus
    if setup.encoding.is_signed:
        message = to_signed(message, setup.encoding.width)
    return Decryption(message.reshape(setup.encoding.shape), opening, tuple(sorted(kept)), opening.refused + refused)


def _check_output(setup: ThresholdSetup, cts: OutputCiphertexts) -> None:
    if cts.encoding != setup.encoding:
        raise ConcreteLayoutError(f"output encoding {cts.encoding.as_dict()} is not the one the shares were dealt for "
                                  f"({setup.encoding.as_dict()})")

