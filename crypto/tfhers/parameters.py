"""The TFHE-rs parameter sets owner encryption runs with, as named records (one place for every size).

- :data:`PRODUCTION_PARAMETERS`: concrete-python 2.11's TFHE-rs interoperability set (lwe 902, glwe 1 x 4096,
  pbs 15/2, ks 3/6, message 4, carry 8, "Big" encryption key) with the compact-public-key encryption noise
  replaced by TUniform(2^4), which tfhe-rs 0.10's input proofs require (docs/OWNER_ENCRYPTION.md §1).
- :data:`TEST_ONLY_PARAMETERS`: the same set with 32-dimension keys and a CRS for 8 digits, so the test suite
  runs the proof path (node tool, seal, open) in seconds instead of the production CRS's tens of minutes.
  **It has no security at all**: every function that takes parameters refuses it unless the environment says
  ``REPO_MARKET_ALLOW_TEST_ONLY_PARAMETERS=1`` (the owner-encryption tests set it), and concrete cannot
  import its ciphertexts (:meth:`TfheParameters.concrete_params_dict` refuses it).

Both sets share the digit layout (one packed 4-bit digit per LWE, message 4 x carry 8), so the same checks
and the same node code run for both; only the dimensions and the CRS capacity differ.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from crypto.encoding import canonical_digest
from crypto.errors import CryptoError

TEST_ONLY_FLAG = "REPO_MARKET_ALLOW_TEST_ONLY_PARAMETERS"


class TestOnlyParametersError(CryptoError, ValueError):
    """A TEST-ONLY parameter set was used without the explicit test flag."""

    __test__ = False  # not a pytest test class despite the name


@dataclass(frozen=True)
class TfheParameters:
    """One TFHE-rs parameter set (node-tfhe 0.10 ``Shortint.new_parameters`` arguments) plus the capacity of
    its proof CRS. Floats are the noise standard deviations tfhe-rs and concrete are given, verbatim."""

    name: str
    test_only: bool
    lwe_dimension: int
    glwe_dimension: int
    polynomial_size: int
    lwe_noise_std: float  # Gaussian, the small (keyswitched) key's encryption noise
    glwe_tuniform_bound_log2: int  # TUniform bound of the compact-public-key encryption noise
    concrete_glwe_std: float  # what concrete is told for the big key (its own std: it refuses any other)
    pbs_base_log: int
    pbs_level: int
    ks_base_log: int
    ks_level: int
    message_modulus: int
    carry_modulus: int
    max_noise_level: int
    log2_p_fail: float
    proven_digit_limit: int  # digits one CRS proves in one list (5 plaintext bits each)

    @property
    def encryption_dimension(self) -> int:
        """The compact public key's (and every owner-encrypted LWE's) dimension: the "Big" key."""
        return self.glwe_dimension * self.polynomial_size

    @property
    def lwe_size(self) -> int:
        return self.encryption_dimension + 1

    @property
    def unproven_digit_limit(self) -> int:
        """[decided] One compact list shares one mask of ``encryption_dimension`` coefficients; more digits
        would spill into a second mask, a layout the checks do not accept."""
        return self.encryption_dimension

    @property
    def packed_degree(self) -> int:
        """The degree tfhe-rs labels a packed LWE with: two message blocks, i.e. one 4-bit digit."""
        return self.message_modulus**2 - 1

    def digest(self) -> bytes:
        """SHA-256 of the canonical record (floats as their exact hex form): names the set in the terms."""
        return canonical_digest(
            {k: (v.hex() if isinstance(v, float) else v) for k, v in asdict(self).items()}, name="parameters")

    def tool_record(self) -> dict[str, Any]:
        """What ``node/tfhe_tool.js`` builds its configuration from."""
        return asdict(self)

    def concrete_params_dict(self) -> dict[str, Any]:
        """The set as concrete's ``tfhers.get_type_from_params_dict`` reads it."""
        if self.test_only:
            raise TestOnlyParametersError(f"parameters: {self.name!r} is TEST-ONLY; concrete never imports it")
        return {
            "lwe_dimension": self.lwe_dimension,
            "glwe_dimension": self.glwe_dimension,
            "polynomial_size": self.polynomial_size,
            "lwe_noise_distribution": {"Gaussian": {"std": self.lwe_noise_std, "mean": 0.0}},
            "glwe_noise_distribution": {"Gaussian": {"std": self.concrete_glwe_std, "mean": 0.0}},
            "pbs_base_log": self.pbs_base_log,
            "pbs_level": self.pbs_level,
            "ks_base_log": self.ks_base_log,
            "ks_level": self.ks_level,
            "message_modulus": self.message_modulus,
            "carry_modulus": self.carry_modulus,
            "max_noise_level": self.max_noise_level,
            "log2_p_fail": self.log2_p_fail,
            "ciphertext_modulus": {"modulus": 0, "scalar_bits": 64},
            "encryption_key_choice": "Big",
        }


PRODUCTION_PARAMETERS = TfheParameters(
    name="concrete-interop-tuniform4",
    test_only=False,
    lwe_dimension=902,
    glwe_dimension=1,
    polynomial_size=4096,
    lwe_noise_std=1.0994794733558207e-6,
    glwe_tuniform_bound_log2=4,  # [decided] docs/OWNER_ENCRYPTION.md §1
    concrete_glwe_std=2.168404344971009e-19,
    pbs_base_log=15,
    pbs_level=2,
    ks_base_log=3,
    ks_level=6,
    message_modulus=4,
    carry_modulus=8,
    max_noise_level=10,
    log2_p_fail=-64.084,
    proven_digit_limit=72,  # [decided] N = 16 needs 53 digits in the densest layout
)

# [decided] TEST-ONLY: 32-dimension keys (CRS generation in seconds, measured in bench_owner_encryption.json
# section test_only); everything else as in production so the same checks run.
TEST_ONLY_PARAMETERS = replace(
    PRODUCTION_PARAMETERS,
    name="TEST-ONLY-insecure-d32",
    test_only=True,
    lwe_dimension=32,
    glwe_dimension=1,
    polynomial_size=32,
    proven_digit_limit=8,
)

PARAMETER_SETS = {p.name: p for p in (PRODUCTION_PARAMETERS, TEST_ONLY_PARAMETERS)}


def test_only_allowed() -> bool:
    return os.environ.get(TEST_ONLY_FLAG) == "1"


def usable_parameters(parameters: Any) -> TfheParameters:
    """``parameters`` if it is a known record a market may use: TEST-ONLY sets only with the explicit flag."""
    if not isinstance(parameters, TfheParameters) or PARAMETER_SETS.get(parameters.name) != parameters:
        raise ValueError(f"parameters: {parameters!r} is not one of {sorted(PARAMETER_SETS)}")
    if parameters.test_only and not test_only_allowed():
        raise TestOnlyParametersError(
            f"parameters: {parameters.name!r} is a TEST-ONLY set without security; refused unless "
            f"{TEST_ONLY_FLAG}=1 (set by the test suite only)")
    return parameters


def parameters_by_name(name: str) -> TfheParameters:
    """The record a manifest or the terms name, checked with :func:`usable_parameters`."""
    if name not in PARAMETER_SETS:
        raise ValueError(f"parameters: unknown set {name!r}, expected one of {sorted(PARAMETER_SETS)}")
    return usable_parameters(PARAMETER_SETS[name])
