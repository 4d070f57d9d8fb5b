"""Identity keys: generation, 0600 key files, refusal of unsafe/corrupt files, no secrets in reprs."""
from __future__ import annotations

import copy
import os
import pickle
import stat

import pytest
from cryptography.hazmat.primitives import serialization

from crypto.encoding import digest
from crypto.errors import KeyFileError, KeyFormatError, KeyPermissionError, WrongSignerError
from crypto.identity import (
    PUBLIC_IDENTITY_FILE,
    SEALING_KEY_FILE,
    SIGNING_KEY_FILE,
    IdentityKeys,
    PublicIdentity,
    read_private_file,
    validate_role,
    write_private_file,
)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def private_raw(directory, password=None) -> list[bytes]:
    """The raw private key bytes, read independently of crypto.identity (for leak checks)."""
    raws = []
    for name in (SIGNING_KEY_FILE, SEALING_KEY_FILE):
        key = serialization.load_pem_private_key((directory / name).read_bytes(), password=password)
        raws.append(
            key.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
        )
    return raws


def secret_forms(directory) -> list[str]:
    """Every textual form a leak could take: raw bytes repr, hex (both cases), PEM body lines."""
    forms = []
    for raw in private_raw(directory):
        forms += [raw.hex(), raw.hex().upper(), repr(raw)[2:-1]]
    for name in (SIGNING_KEY_FILE, SEALING_KEY_FILE):
        lines = (directory / name).read_text().splitlines()
        forms += [line for line in lines if not line.startswith("-----")]
    return forms


@pytest.fixture
def saved(tmp_path):
    keys = IdentityKeys.generate("dealer_mm")
    directory = tmp_path / "dealer_mm"
    keys.save(directory)
    return keys, directory


# --- round trip -----------------------------------------------------------------------------------------


def test_save_load_round_trip(saved):
    keys, directory = saved
    loaded = IdentityKeys.load(directory, role="dealer_mm")
    assert loaded.role == "dealer_mm"
    assert loaded.public == keys.public
    message = b"offer 415 bp"
    keys.public.verify(loaded.sign(message), message)
    loaded.public.verify(keys.sign(message), message)


def test_key_agreement_is_symmetric():
    alice, bob = IdentityKeys.generate("dealer_mm"), IdentityKeys.generate("custodian")
    shared = alice.exchange(bob.public.sealing_key)
    assert shared == bob.exchange(alice.public.sealing_key)
    assert len(shared) == 32
    assert shared != IdentityKeys.generate("custodian").exchange(alice.public.sealing_key)


def test_file_modes(saved):
    _, directory = saved
    assert mode(directory / SIGNING_KEY_FILE) == 0o600
    assert mode(directory / SEALING_KEY_FILE) == 0o600
    assert mode(directory / PUBLIC_IDENTITY_FILE) == 0o644
    assert mode(directory) == 0o700
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [SIGNING_KEY_FILE, SEALING_KEY_FILE, PUBLIC_IDENTITY_FILE]
    )  # no temporary files left behind


def test_private_file_mode_is_exact_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        write_private_file(tmp_path / "secret", b"x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "secret") == 0o600
    assert read_private_file(tmp_path / "secret") == b"x"


def test_pem_files_are_standard_pkcs8(saved):
    _, directory = saved
    text = (directory / SIGNING_KEY_FILE).read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")
    raws = private_raw(directory)
    assert [len(r) for r in raws] == [32, 32]


def test_password_protected_files(tmp_path):
    keys = IdentityKeys.generate("custodian")
    keys.save(tmp_path / "c", password=b"correct horse")
    assert "ENCRYPTED" in (tmp_path / "c" / SIGNING_KEY_FILE).read_text()
    assert IdentityKeys.load(tmp_path / "c", password=b"correct horse").public == keys.public
    with pytest.raises(KeyFormatError, match="password-protected"):
        IdentityKeys.load(tmp_path / "c")
    with pytest.raises(KeyFormatError, match="wrong password"):
        IdentityKeys.load(tmp_path / "c", password=b"wrong")


def test_refuses_to_overwrite(saved):
    keys, directory = saved
    before = (directory / SIGNING_KEY_FILE).read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        IdentityKeys.generate("dealer_mm").save(directory)
    assert (directory / SIGNING_KEY_FILE).read_bytes() == before
    IdentityKeys.generate("dealer_mm").save(directory, overwrite=True)
    assert IdentityKeys.load(directory).public != keys.public


# --- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o004])
@pytest.mark.parametrize("name", [SIGNING_KEY_FILE, SEALING_KEY_FILE])
def test_refuses_loose_permissions(saved, name, loose):
    _, directory = saved
    os.chmod(directory / name, loose)
    with pytest.raises(KeyPermissionError) as info:
        IdentityKeys.load(directory)
    message = str(info.value)
    assert name in message and f"{loose:04o}" in message and "0600" in message


def test_stricter_mode_is_fine(saved):
    keys, directory = saved
    os.chmod(directory / SIGNING_KEY_FILE, 0o400)
    assert IdentityKeys.load(directory).public == keys.public


def test_refuses_symlinked_key_file(saved, tmp_path):
    _, directory = saved
    target = tmp_path / "elsewhere.key"
    os.replace(directory / SIGNING_KEY_FILE, target)
    os.symlink(target, directory / SIGNING_KEY_FILE)
    with pytest.raises(KeyPermissionError, match="cannot open key file safely"):
        IdentityKeys.load(directory)


@pytest.mark.parametrize("name", [SIGNING_KEY_FILE, SEALING_KEY_FILE])
@pytest.mark.parametrize("keep", [0, 1, 40, 0.5, -2])
def test_truncated_key_file(saved, name, keep):
    _, directory = saved
    path = directory / name
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep if keep >= 0 else len(data) + keep * 20
    path.write_bytes(data[:cut])
    with pytest.raises(KeyFormatError, match=f"{name}: not a valid PKCS#8 PEM private key"):
        IdentityKeys.load(directory)


def test_wrong_key_type(saved):
    _, directory = saved
    signing, sealing = directory / SIGNING_KEY_FILE, directory / SEALING_KEY_FILE
    a, b = signing.read_bytes(), sealing.read_bytes()
    write_private_file(signing, b, overwrite=True)
    write_private_file(sealing, a, overwrite=True)
    with pytest.raises(KeyFormatError, match="signing.key: holds a key of type X25519, expected Ed25519"):
        IdentityKeys.load(directory)


def test_other_algorithm_rejected(saved):
    from cryptography.hazmat.primitives.asymmetric import ec

    _, directory = saved
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private_file(directory / SEALING_KEY_FILE, pem, overwrite=True)
    with pytest.raises(KeyFormatError, match="sealing.key: holds a key of type .*expected X25519"):
        IdentityKeys.load(directory)


def test_mismatched_public_file(saved, tmp_path):
    _, directory = saved
    IdentityKeys.generate("dealer_mm").public.save(directory / PUBLIC_IDENTITY_FILE)
    with pytest.raises(KeyFormatError, match="do not match identity.json"):
        IdentityKeys.load(directory)


def test_role_mismatch(saved):
    _, directory = saved
    with pytest.raises(KeyFormatError, match="role 'dealer_mm', expected 'dealer_rm'"):
        IdentityKeys.load(directory, role="dealer_rm")


def test_missing_files(tmp_path, saved):
    with pytest.raises(KeyFileError, match="not found"):
        IdentityKeys.load(tmp_path / "nobody")
    _, directory = saved
    (directory / SEALING_KEY_FILE).unlink()
    with pytest.raises(KeyFileError, match="sealing.key: key file not found"):
        IdentityKeys.load(directory)


def test_corrupt_public_file(saved):
    _, directory = saved
    (directory / PUBLIC_IDENTITY_FILE).write_text('{"format": "repo-market-public-identity-v1", "role": "x"')
    with pytest.raises(KeyFormatError, match="not a JSON public identity"):
        IdentityKeys.load(directory)


# --- no secrets in reprs, strs, errors, pickles ---------------------------------------------------------


def test_no_secret_in_repr_or_str(saved):
    keys, directory = saved
    texts = [repr(keys), str(keys), f"{keys}", repr(keys.public), str(keys.public), repr(IdentityKeys.load(directory))]
    for form in secret_forms(directory):
        for text in texts:
            assert form not in text
    assert "dealer_mm" in repr(keys)


def test_no_secret_in_error_messages(saved):
    _, directory = saved
    forms = secret_forms(directory)
    messages = []
    signing = directory / SIGNING_KEY_FILE
    original = signing.read_bytes()
    for corrupt in (original[:-30], original.replace(b"M", b"N", 1), original[:60]):
        write_private_file(signing, corrupt, overwrite=True)
        with pytest.raises(KeyFileError) as info:
            IdentityKeys.load(directory)
        messages.append(str(info.value))
        messages.append(repr(info.value))
        assert info.value.__cause__ is None and info.value.__suppress_context__
    write_private_file(signing, original, overwrite=True)
    os.chmod(signing, 0o644)
    with pytest.raises(KeyPermissionError) as info:
        IdentityKeys.load(directory)
    messages.append(str(info.value))
    for form in forms:
        for message in messages:
            assert form not in message


def test_keys_cannot_be_pickled_or_copied():
    keys = IdentityKeys.generate("custodian")
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(keys)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.deepcopy(keys)


# --- public identity ------------------------------------------------------------------------------------


def test_public_identity_encodings(tmp_path):
    public = IdentityKeys.generate("evaluator_1").public
    assert PublicIdentity.from_dict(public.as_dict()) == public
    assert PublicIdentity.from_bytes(public.to_bytes()) == public
    assert public.fingerprint == digest(public.to_bytes())
    path = public.save(tmp_path)
    assert path.name == PUBLIC_IDENTITY_FILE and mode(path) == 0o644
    assert PublicIdentity.load(tmp_path) == public
    assert public.as_dict()["signing_key"] == public.signing_key.hex()


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"signing_key": "00" * 31}, "signing_key: expected 32 bytes, got 31"),
        ({"sealing_key": "zz" * 32}, "sealing_key: not a hex string"),
        ({"role": "Dealer MM"}, "role: 'Dealer MM' is not a role name"),
        ({"format": "other"}, "format 'other'"),
    ],
)
def test_public_identity_validation(change, fragment):
    data = {**IdentityKeys.generate("dealer_rm").public.as_dict(), **change}
    with pytest.raises(ValueError, match=fragment):
        PublicIdentity.from_dict(data)


def test_verify_rejects_other_signer():
    alice, mallory = IdentityKeys.generate("dealer_mm"), IdentityKeys.generate("dealer_mm")
    with pytest.raises(WrongSignerError, match="role 'dealer_mm'"):
        alice.public.verify(mallory.sign(b"m"), b"m")
    with pytest.raises(WrongSignerError):
        alice.public.verify(alice.sign(b"m"), b"n")
    with pytest.raises(WrongSignerError, match="expected 64 bytes"):
        alice.public.verify(b"short", b"m")


@pytest.mark.parametrize("role", ["", "Custodian", "1dealer", "dealer mm", "d" * 49, None, b"custodian"])
def test_validate_role_rejects(role):
    with pytest.raises(ValueError, match="role:"):
        validate_role(role)


def test_validate_role_accepts():
    for role in ("dealer_mm", "dealer_rm", "custodian", "evaluator_1", "auditor"):
        assert validate_role(role) == role
