"""Opening a round's agreed output from the key holders' public shares (docs/THRESHOLD.md).

One place for what the custodian, a holder and the auditor all do with the shares of a round:

* :func:`posted_shares` -- the share digests the chain's ``SharePosted`` events name, per stage, in chain order,
  with the holder role that posted each (never a local copy);
* :func:`output_value` -- the agreed output blob's ciphertext payload (hash-checked against the digest on
  chain), which every share blob names by its SHA-256;
* :func:`open_output` -- the blobs fetched by digest (hash-checked) and combined with
  ``crypto.threshold.combine``: nothing opens from fewer than k valid shares, and a refused or inconsistent
  share raises an error naming the holder, the round and the reason.

Round ``r`` uses one-time slot ``r - 1`` [decided].
"""
from __future__ import annotations

from dataclasses import dataclass

from chain import ShareStage
from crypto.circuit import unwrap_blob
from crypto.threshold import TruncatedShareError, combine, read_output
from protocol.blobstore import BlobError

__all__ = ["PostedShare", "posted_shares", "holder_name", "output_value", "open_output", "slot_of", "Opened"]


def slot_of(round_id: int) -> int:
    """The one-time decryption slot of round ``round_id`` [decided: slot r - 1]."""
    return int(round_id) - 1


@dataclass(frozen=True)
class PostedShare:
    """One ``SharePosted`` event: who posted which share digest, for which stage, in which block."""

    holder: str        # role name (key_holder_<i>), or the address if it is no holder of market.json
    address: str
    stage: int         # chain.ShareStage
    digest: bytes
    block: int
    count: int


def holder_name(dep, address: str) -> str:
    """The key holder role of ``address`` (``Deployment.role_of``), or the address itself if it is no holder's."""
    role = dep.role_of(address)
    return role if role in dep.holders else address


def posted_shares(dep, round_id: int) -> dict[int, list[PostedShare]]:
    """``{ShareStage.MASK: [...], ShareStage.TABLE: [...]}`` from the round's ``SharePosted`` events."""
    shares: dict[int, list[PostedShare]] = {ShareStage.MASK: [], ShareStage.TABLE: []}
    for e in dep.coordinator.events("SharePosted", round_id=int(round_id)):
        address = e.args["holder"]
        stage = int(e.args["stage"])
        shares.setdefault(stage, []).append(PostedShare(holder_name(dep, address), address, stage,
                                                        bytes(e.args["share_digest"]), e.block_number,
                                                        int(e.args["count"])))
    return shares


def output_value(dep, output_digest: bytes) -> bytes:
    """The serialized output value inside the agreed ``ciphertext_out`` blob (its digest is on chain)."""
    return unwrap_blob("ciphertext_out", dep.blobs.get(output_digest), expected_digest=output_digest)


@dataclass(frozen=True)
class Opened:
    """An opened output: the decryption and the share digests it was combined from (in chain order)."""

    decryption: object  # crypto.threshold.Decryption
    mask_digests: tuple[bytes, ...]
    table_digests: tuple[bytes, ...]


def open_output(dep, setup, round_id: int, value: bytes, shares: dict, *, strict: bool = True,
                blob=None) -> Opened:
    """Combine the posted shares of ``round_id`` (``posted_shares``) for the output ``value``.

    ``blob(kind, digest)`` fetches a share blob (default: the blob store, hash-checked); a missing one is a
    :class:`crypto.threshold.TruncatedShareError` naming its holder. ``strict``: the first refused share
    raises; otherwise refused shares are set aside (``decryption.refused``) and the rest open if k are valid."""
    fetch = blob or (lambda kind, d: dep.blobs.get(d))
    blobs: dict[int, list[bytes]] = {}
    for stage, kind in ((ShareStage.MASK, "mask"), (ShareStage.TABLE, "table")):
        blobs[stage] = []
        for share in shares.get(stage, []):
            try:
                data = fetch(f"share_{kind}", share.digest)
            except BlobError as exc:
                if strict:
                    raise TruncatedShareError(share.holder, round_id, f"{kind} share blob {share.digest.hex()[:16]}… "
                                              f"named on chain: {exc}") from None
                data = None
            blobs[stage].append(b"" if data is None else data)  # an empty blob is refused as truncated
    masks, tables = shares.get(ShareStage.MASK, []), shares.get(ShareStage.TABLE, [])
    decryption = combine(setup, read_output(value), blobs[ShareStage.MASK], blobs[ShareStage.TABLE],
                         round=int(round_id), slot=slot_of(round_id), strict=strict,
                         mask_senders=[s.holder for s in masks], table_senders=[s.holder for s in tables])
    return Opened(decryption, tuple(s.digest for s in masks), tuple(s.digest for s in tables))
