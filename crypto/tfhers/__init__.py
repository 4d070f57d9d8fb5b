"""Owner encryption: dealers encrypt their own reports under a published TFHE-rs compact public key, with an
optional zero-knowledge input proof bound to (chain id, contract, round, dealer role); the circuit imports
the ciphertexts through concrete-python's ``tfhers`` bridge.

The surface, by role (design and measured figures: ``docs/OWNER_ENCRYPTION.md``):

- custodian: :func:`generate_public_key_material` (client key 0600, compact public key, the CRS when input
  proofs are on, a manifest; :attr:`PublicKeyMaterial.terms` for the terms on chain), :func:`generate_crs`,
  :func:`load_public_key_material`, :func:`inject_client_key` (concrete's keys from the same secret, checked);
- dealer: :func:`seal_owner_report`;
- evaluator / auditor: :func:`open_owner_report`, then ``bridge.import_value(report.import_buffer, i)``.

Parameter sets are named records (``parameters.py``): :data:`PRODUCTION_PARAMETERS`, and
:data:`TEST_ONLY_PARAMETERS` (no security; refused unless ``REPO_MARKET_ALLOW_TEST_ONLY_PARAMETERS=1``).
"""
from crypto.tfhers.owner_encryption import (
    DIGIT_BITS,
    DIGIT_LIMIT,
    REJECTION_REASONS,
    OwnerKeyTerms,
    OwnerReportError,
    PublicKeyMaterial,
    VerifiedReport,
    concrete_params_dict,
    decrypt_import_buffer,
    decrypt_phases,
    digit_type,
    encrypt_unproven_digits,
    expand_unproven_digits,
    generate_crs,
    generate_public_key_material,
    inject_client_key,
    load_public_key_material,
    node_tfhe_available,
    open_owner_report,
    owner_report_binding,
    seal_owner_report,
    to_native_digits,
)
from crypto.tfhers.parameters import (
    PRODUCTION_PARAMETERS,
    TEST_ONLY_FLAG,
    TEST_ONLY_PARAMETERS,
    TestOnlyParametersError,
    TfheParameters,
    parameters_by_name,
)

__all__ = [
    "DIGIT_BITS",
    "DIGIT_LIMIT",
    "PRODUCTION_PARAMETERS",
    "REJECTION_REASONS",
    "TEST_ONLY_FLAG",
    "TEST_ONLY_PARAMETERS",
    "OwnerKeyTerms",
    "OwnerReportError",
    "PublicKeyMaterial",
    "TestOnlyParametersError",
    "TfheParameters",
    "VerifiedReport",
    "concrete_params_dict",
    "decrypt_import_buffer",
    "decrypt_phases",
    "digit_type",
    "encrypt_unproven_digits",
    "expand_unproven_digits",
    "generate_crs",
    "generate_public_key_material",
    "inject_client_key",
    "load_public_key_material",
    "node_tfhe_available",
    "open_owner_report",
    "owner_report_binding",
    "parameters_by_name",
    "seal_owner_report",
    "to_native_digits",
]
