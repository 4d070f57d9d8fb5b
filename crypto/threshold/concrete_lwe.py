"""concrete-python 2.11 objects read as plain LWE: output ciphertexts, the secret key, the output encoding.

Byte-layout dependencies, read from concrete's schema ``concrete-protocol.capnp`` (concrete repository,
tools/concrete-protocol/src) and its decoders (compilers/.../lib/Common/Transformers.cpp):

* a serialized ``fhe.Value`` is a capnp ``Value {payload, rawInfo, typeInfo}``; an encrypted integer's
  payload is a tensor of u64 of shape ``abstract shape + [lweDimension + 1]``, each row ``(a_1..a_n, b)``;
  ``typeInfo.lweCiphertext.encryption.keyId`` names the secret key that decrypts it (under ``multi``
  parameters: the output partition's key);
* ``fhe.Keys.serialize()`` is a capnp ``Keyset {server, client}``; ``client.lweSecretKeys`` is a list of
  ``LweSecretKey {info {id, params}, payload}``, the payload the key's ``lweDimension`` u64 (binary keys);
  concrete decrypts with ``lweSecretKeys[keyId]`` (by position), so the position must equal the id;
* decoding (native mode, width p): phase ``b − ⟨a, s⟩ mod 2^64 = Δ·m + e`` with ``Δ = 2^(64 − p − 1)``
  (one padding bit); ``m = round(phase / Δ) mod 2^(p+1)``; signed outputs then keep the low p bits and are
  negative when ``m ≥ 2^(p−1)``.

Anything that does not fit (another encoding mode, compression, a modulus other than 2^64, shapes that do not
multiply out, a key of another dimension) raises :class:`ConcreteLayoutError`: never a silent decode.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from crypto.encoding import digest
from crypto.threshold.capnp_wire import CapnpLayoutError, Message, StructReader, payload_uint64

__all__ = ["ConcreteLayoutError", "OutputCiphertexts", "OutputEncoding", "read_output", "read_secret_key",
           "read_output_encoding", "decode_phase", "to_signed", "lwe_phase"]


# concrete bytes that do not have the layout read here (capnp level or concrete level): one error type.
ConcreteLayoutError = CapnpLayoutError


@dataclass(frozen=True)
class OutputEncoding:
    """How one output gate's ciphertexts encode integers: key, dimension, width p, signedness."""

    key_id: int
    lwe_dimension: int
    width: int  # p: message bits; Δ = 2^(64 − p − 1)
    is_signed: bool
    shape: tuple[int, ...]  # the abstract (cleartext) shape

    @property
    def count(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def delta_log2(self) -> int:
        return 64 - self.width - 1

    def as_dict(self) -> dict:
        return {"key_id": self.key_id, "lwe_dimension": self.lwe_dimension, "width": self.width,
                "is_signed": self.is_signed, "shape": list(self.shape)}


@dataclass(frozen=True)
class OutputCiphertexts:
    """The LWE ciphertexts of one serialized output value: ``a`` (count × n) and ``b`` (count), u64."""

    encoding: OutputEncoding
    a: np.ndarray
    b: np.ndarray
    digest: bytes  # SHA-256 of the serialized value these were read from


def _lwe_type(type_info: StructReader, *, what: str) -> tuple[StructReader, OutputEncoding]:
    """``TypeInfo`` → its ``LweCiphertextTypeInfo`` and the encoding it declares."""
    name = type_info.message.name
    kind = type_info.uint16(0)  # union {lweCiphertext @0, plaintext @1, index @2}
    if kind != 0:
        raise ConcreteLayoutError(f"{name}: {what} is not an encrypted value (TypeInfo kind {kind})")
    lwe = type_info.struct(0, field="typeInfo.lweCiphertext")
    precision = lwe.uint32(0)
    compression = lwe.uint16(2)
    if precision != 64:
        raise ConcreteLayoutError(f"{name}: {what}: integerPrecision {precision}, expected 64-bit LWE")
    if compression != 0:
        raise ConcreteLayoutError(f"{name}: {what}: compression {compression} (only uncompressed outputs are read)")
    encryption = lwe.struct(2, field="lweCiphertext.encryption")
    key_id, dimension = encryption.uint32(0), encryption.uint32(1)
    modulus = encryption.struct(0, field="encryption.modulus")
    if modulus.uint16(0) != 0:
        raise ConcreteLayoutError(f"{name}: {what}: ciphertext modulus kind {modulus.uint16(0)}, expected native 2^64")
    if lwe.uint16(3) != 0:
        raise ConcreteLayoutError(f"{name}: {what}: boolean encoding (only integer outputs are read)")
    integer = lwe.struct(3, field="lweCiphertext.encoding.integer")
    width, signed, mode = integer.uint32(0), integer.bool(32), integer.uint16(3)
    if mode != 0:
        raise ConcreteLayoutError(f"{name}: {what}: integer mode {mode} (chunked/CRT), only native is read")
    if not 1 <= width <= 16 or not 256 <= dimension <= 1 << 16:
        raise ConcreteLayoutError(f"{name}: {what}: width {width}, LWE dimension {dimension}: not a concrete output")
    abstract = tuple(lwe.struct(0, field="abstractShape").uint32_list(0, field="abstractShape.dimensions"))
    concrete = tuple(lwe.struct(1, field="concreteShape").uint32_list(0, field="concreteShape.dimensions"))
    if concrete != abstract + (dimension + 1,):
        raise ConcreteLayoutError(f"{name}: {what}: concrete shape {concrete} is not abstract shape {abstract} "
                                  f"+ [{dimension + 1}]")
    return lwe, OutputEncoding(key_id, dimension, width, signed, abstract)


def read_output(value_bytes: bytes) -> OutputCiphertexts:
    """Split a serialized ``fhe.Value`` (a circuit output) into its LWE ciphertexts and encoding."""
    message = Message(value_bytes, name="output value")
    root = message.root()
    raw = root.struct(1, field="rawInfo")
    _, encoding = _lwe_type(root.struct(2, field="typeInfo"), what="output value")
    raw_shape = tuple(raw.struct(0, field="rawInfo.shape").uint32_list(0, field="rawInfo.shape.dimensions"))
    if raw.uint32(0) != 64 or raw_shape != encoding.shape + (encoding.lwe_dimension + 1,):
        raise ConcreteLayoutError(f"output value: raw tensor of {raw.uint32(0)}-bit integers, shape {raw_shape}: "
                                  f"not {encoding.count} LWE of dimension {encoding.lwe_dimension}")
    words = payload_uint64(root.struct(0, field="payload"), field="payload")
    size = encoding.lwe_dimension + 1
    if words.size != encoding.count * size:
        raise ConcreteLayoutError(f"output value: payload of {words.size} u64, expected {encoding.count} × {size}")
    rows = words.reshape(encoding.count, size)
    return OutputCiphertexts(encoding, np.ascontiguousarray(rows[:, :-1]), np.ascontiguousarray(rows[:, -1]),
                             digest(bytes(value_bytes)))


def read_output_encoding(program_info: bytes, *, output: int = 0, circuit: int = 0) -> OutputEncoding:
    """The encoding that output ``output`` of circuit ``circuit`` declares in ``client_specs.program_info.serialize()``.

    concrete serializes the program info as capnp's JSON rendering of ``ProgramInfo``: an independent source
    to check :func:`read_output` (binary) against, and what the dealer needs before any output exists.
    """
    try:
        info = json.loads(bytes(program_info))
        gate = info["circuits"][circuit]["outputs"][output]["typeInfo"]["lweCiphertext"]
        encryption, integer = gate["encryption"], gate["encoding"]["integer"]
        if gate.get("compression", "none") != "none" or "native" not in integer["mode"] \
                or "native" not in encryption["modulus"]["modulus"] or gate["integerPrecision"] != 64:
            raise ConcreteLayoutError(f"program info: output {output} is not an uncompressed native 64-bit integer LWE")
        return OutputEncoding(int(encryption["keyId"]), int(encryption["lweDimension"]), int(integer["width"]),
                              bool(integer.get("isSigned", False)), tuple(int(d) for d in gate["abstractShape"]["dimensions"]))
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ConcreteLayoutError(f"program info: output {output} of circuit {circuit} cannot be read "
                                  f"({type(error).__name__}: {error})") from None


def read_secret_key(keyset_bytes: bytes, encoding: OutputEncoding) -> np.ndarray:
    """The binary LWE secret key (u64 array) that decrypts outputs of ``encoding``, from ``fhe.Keys.serialize()``."""
    message = Message(keyset_bytes, name="keyset")
    client = message.root().struct(1, field="client")
    keys = client.struct_list(0, field="client.lweSecretKeys")
    if not 0 <= encoding.key_id < len(keys):
        raise ConcreteLayoutError(f"keyset: output key id {encoding.key_id}, but the keyset has {len(keys)} secret keys")
    key = keys[encoding.key_id]
    info = key.struct(0, field="lweSecretKey.info")
    params = info.struct(0, field="lweSecretKeyInfo.params")
    key_id, dimension, precision, key_type = info.uint32(0), params.uint32(0), params.uint32(1), params.uint16(4)
    if key_id != encoding.key_id:
        raise ConcreteLayoutError(f"keyset: secret key at position {encoding.key_id} has id {key_id}")
    if dimension != encoding.lwe_dimension or precision != 64 or key_type != 0:
        raise ConcreteLayoutError(f"keyset: key {key_id} has dimension {dimension}, precision {precision}, type "
                                  f"{key_type}; outputs need a binary 64-bit key of dimension {encoding.lwe_dimension}")
    values = payload_uint64(key.struct(1, field="lweSecretKey.payload"), field="lweSecretKey.payload")
    if values.size != dimension:
        raise ConcreteLayoutError(f"keyset: key {key_id} holds {values.size} coefficients, expected {dimension}")
    if np.any(values > 1):
        raise ConcreteLayoutError(f"keyset: key {key_id} is not binary: wrong layout")
    return values


def lwe_phase(cts: OutputCiphertexts, key: np.ndarray) -> np.ndarray:
    """``b − ⟨a, s⟩ mod 2^64`` for every ciphertext (u64 arithmetic wraps: exactly mod 2^64)."""
    with np.errstate(over="ignore"):
        inner = (cts.a * np.asarray(key, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
        return cts.b - inner


def decode_phase(phase, width: int, bits: int = 64) -> np.ndarray:
    """concrete's native decoding of phases in Z_2^bits: ``round(phase / 2^(bits − width − 1)) mod 2^(width+1)``."""
    shift = bits - width - 1
    phase = np.asarray(phase, dtype=np.uint64)
    rounded = (phase >> np.uint64(shift - 1)) + np.uint64(1)
    return ((rounded >> np.uint64(1)) & np.uint64((1 << (width + 1)) - 1)).astype(np.int64)


def to_signed(values, width: int) -> np.ndarray:
    """concrete's signed reading of decoded values: the low p bits, negative when ``m ≥ 2^(p−1)``."""
    values = np.asarray(values, dtype=np.int64)
    low = values & ((1 << width) - 1)
    return np.where(values >= (1 << (width - 1)), low - (1 << width), values)
