"""Owner encryption (issue #12): dealers encrypt their own reports under a published TFHE-rs compact
public key, with a zero-knowledge input proof bound to (chain id, contract, round, dealer role); the
circuit imports the ciphertexts through concrete-python's ``tfhers`` bridge.

The surface, by role (design and measured figures: ``docs/OWNER_ENCRYPTION.md``):

- custodian: :func:`generate_public_key_material` (client key 0600, compact public key, CRS, digests),
  :func:`inject_client_key` (concrete's evaluation keys from the same secret key, checked);
- dealer: :func:`encrypt_report`;
- evaluator / auditor: :func:`verify_and_expand`, then ``bridge.import_value(report.import_buffer, i)``.
"""
from crypto.tfhers.owner_encryption import (
    DIGIT_BITS,
    DIGIT_LIMIT,
    OWNER_REPORT_PURPOSE,
    PROVEN_DIGIT_LIMIT,
    TUNIFORM_BOUND_LOG2,
    OwnerReportError,
    PublicKeyMaterial,
    VerifiedReport,
    concrete_params_dict,
    decrypt_import_buffer,
    digit_type,
    encrypt_report,
    encrypt_unproven_digits,
    expand_unproven_digits,
    generate_public_key_material,
    inject_client_key,
    node_tfhe_available,
    owner_report_binding,
    to_native_digits,
    verify_and_expand,
)

__all__ = [
    "DIGIT_BITS",
    "DIGIT_LIMIT",
    "OWNER_REPORT_PURPOSE",
    "PROVEN_DIGIT_LIMIT",
    "TUNIFORM_BOUND_LOG2",
    "OwnerReportError",
    "PublicKeyMaterial",
    "VerifiedReport",
    "concrete_params_dict",
    "decrypt_import_buffer",
    "digit_type",
    "encrypt_report",
    "encrypt_unproven_digits",
    "expand_unproven_digits",
    "generate_public_key_material",
    "inject_client_key",
    "node_tfhe_available",
    "owner_report_binding",
    "to_native_digits",
    "verify_and_expand",
]
