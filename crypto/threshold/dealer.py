"""The trusted setup dealer: split the output key into replicated additive shares, deal one-time slots,
then destroy its own copy.

Holder folder (mode 0700), every secret file 0600 (``crypto.identity.write_private_file``)::

    threshold-setup.bin     public record (ThresholdSetup), 0644
    threshold-key.share     the holder's additive key shares s_j (j ∉ its missing set), u64 LE
    slots/<slot>.slot       per one-time slot: the holder's mask shares r_j and table shares T_j

Every secret file is ``magic ‖ SHA-256(body) ‖ body`` with a canonical body naming the setup id, the holder
and (slots) the slot number, so a truncated file, a file of another holder or of another setup is refused.

The key shares: s_j for all but the last share index uniform in Z_2^64^n, the last one s − Σ others. Masks
r ∈ Z_2^k uniform per output value, shared the same way in Z_2^k; tables T_r[c] = decode(c − r), shared in
Z_2^(p+1). Any set of all-but-one shares is uniform and independent of the secret, the mask and the table.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np

from crypto.encoding import canonical_bytes, canonical_loads, digest
from crypto.errors import EncodingError
from crypto.identity import read_private_file, write_private_file, write_public_file
from crypto.threshold.concrete_lwe import OutputEncoding, read_secret_key
from crypto.threshold.errors import HolderFileError, ThresholdSetupError
from crypto.threshold.params import ThresholdParams, switch_bits
from crypto.threshold.setup import ThresholdSetup, table_dtype

__all__ = ["deal_key", "deal_secret_key", "deal_slots", "destroy_file", "SETUP_FILE", "KEY_FILE", "SLOT_FOLDER",
           "write_secret_record", "read_secret_record", "slot_path"]

SETUP_FILE = "threshold-setup.bin"
KEY_FILE = "threshold-key.share"
SLOT_FOLDER = "slots"
_KEY_MAGIC = b"RMTHKEY1"
_SLOT_MAGIC = b"RMTHSLT1"


def _uniform(count: int, bits: int) -> np.ndarray:
    """``count`` uniform values of Z_2^bits from the OS CSPRNG (bits ≤ 64)."""
    raw = np.frombuffer(os.urandom(8 * count), dtype="<u8").astype(np.uint64)
    return raw if bits == 64 else raw & np.uint64((1 << bits) - 1)


def _additive(secret: np.ndarray, shares: int, bits: int) -> list[np.ndarray]:
    """``shares`` additive shares of ``secret`` in Z_2^bits: all but the last uniform."""
    mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
    parts = [_uniform(secret.size, bits).reshape(secret.shape) for _ in range(shares - 1)]
    last = np.asarray(secret, dtype=np.uint64).copy()
    for part in parts:
        last = (last - part) & mask
    return parts + [last]


def _holder_folder(folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    (folder / SLOT_FOLDER).mkdir(mode=0o700, exist_ok=True)
    (folder / SLOT_FOLDER).chmod(0o700)
    return folder


def write_secret_record(path: Path, magic: bytes, record: dict, *, overwrite: bool = False) -> None:
    body = canonical_bytes(record, name=path.name)
    write_private_file(path, magic + digest(body) + body, overwrite=overwrite)


def read_secret_record(path: Path, magic: bytes) -> dict:
    data = read_private_file(path)  # missing / not 0600 / symlink: KeyFileError, KeyPermissionError
    head = len(magic) + 32
    if len(data) < head or not data.startswith(magic) or digest(data[head:]) != data[len(magic):head]:
        raise HolderFileError(f"{path}: not an intact threshold file ({len(data)} bytes: truncated, corrupt or another kind)")
    try:
        return canonical_loads(data[head:], name=str(path))
    except EncodingError:  # pragma: no cover - the digest check above catches corruption
        raise HolderFileError(f"{path}: body does not parse") from None


def slot_path(folder: Path, slot: int) -> Path:
    return Path(folder) / SLOT_FOLDER / f"{slot}.slot"


def deal_key(keyset_bytes: bytes, encoding: OutputEncoding, params: ThresholdParams,
             holder_dirs: dict) -> ThresholdSetup:
    """Split the secret key that decrypts ``encoding``'s outputs; write each holder's shares and the public setup.

    ``keyset_bytes``: ``fhe.Keys.serialize()``; ``holder_dirs``: holder name → its folder. Returns the public
    :class:`ThresholdSetup` (publish its digest). Nothing is written outside the holder folders.
    """
    _check_holder_dirs(params, encoding, holder_dirs)
    return deal_secret_key(read_secret_key(keyset_bytes, encoding), encoding, params, holder_dirs)


def _check_holder_dirs(params: ThresholdParams, encoding: OutputEncoding, holder_dirs: dict) -> None:
    if set(holder_dirs) != set(params.holders):
        raise ThresholdSetupError(f"holder_dirs: folders for {sorted(holder_dirs)}, holders are {sorted(params.holders)}")
    switch_bits(encoding.width, params.share_count)  # refuses widths whose tables would be too large
    for holder in params.holders:
        if (Path(holder_dirs[holder]) / KEY_FILE).exists():
            raise ThresholdSetupError(f"{Path(holder_dirs[holder]) / KEY_FILE}: exists; a holder folder serves one setup")


def deal_secret_key(key: np.ndarray, encoding: OutputEncoding, params: ThresholdParams,
                    holder_dirs: dict) -> ThresholdSetup:
    """:func:`deal_key` for a key already read (u64 array of the encoding's LWE dimension, e.g. a key imported
    from TFHE-rs): the same checks, shares and files."""
    _check_holder_dirs(params, encoding, holder_dirs)
    key = np.asarray(key, dtype=np.uint64)
    if key.shape != (encoding.lwe_dimension,):
        raise ThresholdSetupError(f"key: {key.shape} coefficients, the outputs need {encoding.lwe_dimension}")
    setup = ThresholdSetup(params, encoding, secrets.token_bytes(32))
    shares = _additive(key, params.share_count, 64)
    public = setup.to_bytes()
    for holder in params.holders:
        _holder_folder(holder_dirs[holder])
    for holder in params.holders:
        folder = Path(holder_dirs[holder])
        write_public_file(folder / SETUP_FILE, public, overwrite=True)
        write_secret_record(folder / KEY_FILE, _KEY_MAGIC, {
            "setup": setup.setup_id, "holder": holder,
            "shares": {str(j): shares[j].astype("<u8").tobytes() for j in params.shares_of(holder)},
        })
    del key, shares
    return setup


def deal_slots(setup: ThresholdSetup, holder_dirs: dict, slots) -> None:
    """Deal one-time decryption slots (mask and truth-table shares). Needs no key: any trusted dealer can do it,
    and that dealer knows the masks (docs/THRESHOLD.md)."""
    params, count = setup.params, setup.encoding.count
    k, modulus, dtype = setup.switch_bits, setup.table_modulus, table_dtype(setup.encoding.width)
    slots = [int(s) for s in slots]
    for holder in params.holders:
        for slot in slots:
            if slot < 0:
                raise ThresholdSetupError(f"slot: {slot} is negative")
            path = slot_path(holder_dirs[holder], slot)
            if path.exists() or path.with_suffix(".spent").exists():
                raise ThresholdSetupError(f"{path}: slot {slot} was already dealt to {holder}; slots are one-time")
    for slot in slots:
        masks = _uniform(count, k)
        tables = np.stack([setup.decode_table(int(r)) for r in masks]).astype(np.uint64)  # count × 2^k
        mask_shares = _additive(masks, params.share_count, k)
        table_shares = _additive(tables, params.share_count, (modulus - 1).bit_length())
        for holder in params.holders:
            folder = _holder_folder(holder_dirs[holder])
            write_secret_record(slot_path(folder, slot), _SLOT_MAGIC, {
                "setup": setup.setup_id, "holder": holder, "slot": slot,
                "masks": {str(j): mask_shares[j].astype("<u4").tobytes() for j in params.shares_of(holder)},
                "tables": {str(j): table_shares[j].astype(dtype).tobytes() for j in params.shares_of(holder)},
            })


def destroy_file(path: Path) -> None:
    """Overwrite a secret file with zeros, fsync, unlink (best effort against the file system's own copies:
    journaling and SSD remapping may keep old blocks; docs/THRESHOLD.md)."""
    path = Path(path)
    if not path.exists():
        return
    size = path.stat().st_size
    fd = os.open(path, os.O_WRONLY)
    try:
        zeros = b"\0" * min(size, 1 << 20)
        written = 0
        while written < size:
            written += os.write(fd, zeros[: size - written])
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()
