"""Creating and opening a market: the public descriptor ``market.json`` and every role's folder.

``create_market`` is the one place where a market comes into being: it generates each role's identity
keys in that role's own folder (0600 key files), compiles the selection circuit for the published terms,
lets the custodian generate the FHE keys, deal the output key and one-time decryption slots to the key
holders (``roles/key_holder_<i>/threshold/``, docs/THRESHOLD.md) and destroy its own secret keys (``fhe``
backend), publishes the circuit artefact, the evaluation keys and the threshold setup record as blobs, deploys
the Coordinator with their digests and the holders, and writes ``market.json`` -- public data only.  ``Deployment`` is the public view every role and the auditor start
from.

Deposit rule (MODEL.md §6) [decided units]: ``K >= r_max · Q_max`` bp·units, i.e. ``2 · r_max · N``
cash units of half a bp (ledger.CASH_PER_UNIT), converted at the published scale
``WEI_PER_CASH_UNIT`` -- an upper bound on the inventory cost a deviation can impose on the other dealer.
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from chain import (
    Coordinator,
    CoordinatorTerms,
    PhaseWindows,
    connect,
    deploy_coordinator,
    evaluator_role,
    key_holder_role,
)
from common.vocabulary import CLIENT_ROLES, CUSTODIAN, DEALER_MM, DEALER_RM, DEALER_ROLES, DEPLOYER
from crypto.encoding import canonical_digest
from crypto.envelope import Binding
from crypto.identity import PUBLIC_IDENTITY_FILE, IdentityKeys, PublicIdentity
from crypto.threshold import (
    ThresholdParams,
    ThresholdSetup,
    ThresholdSetupError,
    deal_key,
    deal_slots,
    read_output_encoding,
)
from protocol.backend import BACKENDS, CustodianSide, load_circuit
from protocol.blobstore import BlobStore
from protocol.descriptor import MARKET_FORMAT, MarketDescriptor
from protocol.errors import DeploymentError
from protocol.layout import DataDir, read_json, write_json

__all__ = ["Deployment", "DeploymentError", "create_market", "market_terms_digest", "open_market", "deposit_minimum_wei",
           "WEI_PER_CASH_UNIT", "MARKET_FORMAT", "evaluator_roles", "identities_digest", "identities_mismatch",
           "published_coordinator_terms", "key_holder_roles", "threshold_terms", "DEFAULT_SLOTS", "MAX_SLOTS",
           "identity_roles", "signing_roles", "MarketDescriptor", "build_coordinator_terms"]

WEI_PER_CASH_UNIT = 10**12  # [decided] published scale: wei per half-bp cash unit
ENDOWMENT = {"cash_units": 1_000, "collateral_units": 1_000}  # [decided] each party's starting balances
# One-time decryption slots dealt to the key holders at setup: one per round, a market term independent of how
# many rounds one run drives [decided]. A slot costs each holder about 0.5 MB at N = 16 (bench_threshold.json).
DEFAULT_SLOTS = 32
MAX_SLOTS = 1_000


def evaluator_roles(n: int) -> list[str]:
    return [evaluator_role(i) for i in range(n)]


def key_holder_roles(n: int) -> list[str]:
    """``key_holder_1`` .. ``key_holder_<n>``: the holders' role names (and their chain accounts)."""
    return [key_holder_role(i) for i in range(1, n + 1)]


def identity_roles(evaluators: int) -> list[str]:
    """The roles with identity keys (they sign and seal): the custodian, the dealers, the clients, the evaluators."""
    return [CUSTODIAN, *DEALER_ROLES, *CLIENT_ROLES, *evaluator_roles(evaluators)]


def signing_roles(evaluators: int, holders: int = 0) -> tuple[str, ...]:
    """Every role with a chain account in a market of ``evaluators`` evaluators and ``holders`` key holders
    (the roles a key file or keystore may be given for)."""
    return (*identity_roles(evaluators), *key_holder_roles(holders), DEPLOYER)


def threshold_terms(holders, holder_threshold: int, setup_digest: bytes, slots: int) -> dict:
    """What the terms fix about threshold decryption: the holders (role names, in the contract's order), k,
    the public setup record's SHA-256 (docs/THRESHOLD.md) and the number of one-time slots dealt."""
    return {"holders": [str(h) for h in holders], "threshold": int(holder_threshold),
            "setup_sha256": bytes(setup_digest), "slots": int(slots)}


def deposit_minimum_wei(terms) -> int:
    """``r_max · Q_max`` bp·units in wei: 2 half-bp cash units per bp·unit."""
    return 2 * terms.max_rate * terms.grid * WEI_PER_CASH_UNIT


def owner_encryption_terms(parameters: str, parameters_digest: bytes | None, public_key_digest: bytes,
                           crs_digest: bytes | None) -> dict:
    """What the terms fix about owner encryption (the fields of ``crypto.tfhers.OwnerKeyTerms.as_dict()``): the
    TFHE-rs parameter record (``"simulate"`` and no digest on the simulate backend), the compact public key,
    and the CRS when input proofs are on (None: off)."""
    return {"parameters": str(parameters),
            "parameters_sha256": None if parameters_digest is None else bytes(parameters_digest),
            "public_key_sha256": bytes(public_key_digest),
            "crs_sha256": None if crs_digest is None else bytes(crs_digest)}


def market_terms_digest(terms, owner_encryption: dict, key_holders: dict | None = None) -> bytes:
    """The Coordinator's ``terms_digest``: ``sha256(TLV({"market": terms, "owner_encryption": {"crs_sha256",
    "parameters", "parameters_sha256", "public_key_sha256"}}))``, plus ``"key_holders": {"holders", "setup_sha256",
    "slots", "threshold"}`` (:func:`threshold_terms`) on a market with key holders.

    [decided] The market's public key (what dealers encrypt under), its parameter record, with input proofs
    on the CRS, and the threshold setup (who holds the key, k, the setup record) are terms of the market like
    the grid: a dealer, an evaluator, a holder and the auditor all check what they use against this digest on
    chain (docs/AUDIT.md, "Terms digest")."""
    record = {"market": terms.as_dict(), "owner_encryption": owner_encryption}
    if key_holders is not None:
        record["key_holders"] = key_holders
    return canonical_digest(record, name="terms")


def identities_digest(identities: dict) -> bytes:
    """The on-chain anchor of the signing keys: ``sha256(TLV({role: fingerprint}))``.

    ``identities`` is market.json's ``identities`` (role -> PublicIdentity.as_dict()); each role's
    fingerprint is ``sha256(TLV({"format", "role", "signing_key", "sealing_key"}))`` over the raw
    32-byte keys (crypto.identity.PublicIdentity.fingerprint). The Coordinator holds the result as the
    immutable ``identities_digest``, so a receipt or attestation signed by a key that is not in the
    published set cannot be passed off as the market's. [decided] (docs/AUDIT.md, "Signing keys")
    """
    if not isinstance(identities, Mapping) or not identities:
        raise DeploymentError(f"identities must be a non-empty dict role -> public identity, got {identities!r}")
    fingerprints = {}
    for role, data in identities.items():
        identity = PublicIdentity.from_dict(data)
        if identity.role != role:
            raise DeploymentError(f"identities[{role!r}] holds the identity of role {identity.role!r}")
        fingerprints[role] = identity.fingerprint
    return canonical_digest(fingerprints, name="identities")


def identities_mismatch(dep: "Deployment") -> str | None:
    """None if market.json's identities hash to the Coordinator's ``identities_digest()``, else why not.

    For the auditor: the digest is read from the node (the contract's immutable), the identities from the
    published market.json; a swapped key in either is named here.
    """
    onchain = dep.coordinator.terms().identities_digest
    try:
        local = identities_digest(dep.market.published_identities())
    except (DeploymentError, KeyError, TypeError, ValueError) as exc:
        return f"market.json identities are malformed: {exc}"
    if local != onchain:
        return (f"market.json identities hash to {local.hex()}, the contract's identities_digest() is "
                f"{onchain.hex()}: the signing keys are not the ones committed on chain")
    return None


CIRCUIT_CACHE_ENV = "REPO_MARKET_CIRCUIT_CACHE"


def circuit_cache(layout: DataDir) -> Path:
    """Where compiled circuit artefacts are cached: ``<data-dir>/cache`` or ``$REPO_MARKET_CIRCUIT_CACHE``.

    [decided] The shared cache (public artefacts keyed by the terms digest) saves the compile (its seconds:
    ``records[].timings.compile`` in ``bench-results/bench_fhe.json``) when many markets use the same terms
    (tests, repeated demos in new data directories). The chain still
    names the artefact every role must use, and the auditor replays from that blob, not from the cache.
    """
    shared = os.environ.get(CIRCUIT_CACHE_ENV)
    return Path(shared) if shared else layout.cache


@dataclass
class Deployment:
    """Public view of one market: descriptor, blob store, chain connection, coordinator, identities."""

    data_dir: DataDir
    descriptor: dict
    rpc_url: str | None = None
    _chain: object = field(default=None, repr=False)
    signers: dict = field(default_factory=dict, repr=False)  # role -> ChainAccount from key files/keystores
    read_only: bool = False  # the auditor's view: the chain connection writes nothing under data_dir

    # --- descriptor ------------------------------------------------------------------------------------
    @cached_property
    def market(self) -> MarketDescriptor:
        """market.json, parsed and checked once (``descriptor`` keeps the JSON as written, for the export)."""
        return MarketDescriptor.from_dict(self.descriptor, source=str(self.data_dir.market_file))

    @property
    def backend(self) -> str:
        return self.market.backend

    @property
    def terms(self):
        return self.market.terms

    @property
    def contract_address(self) -> str:
        return self.market.contract

    @property
    def chain_id(self) -> int:
        return self.market.chain_id

    @property
    def evaluators(self) -> list[str]:
        return list(self.market.evaluators)

    @property
    def threshold(self) -> int:
        return self.market.threshold

    def digest(self, name: str) -> bytes:
        return self.market.digest(name)

    @property
    def holders(self) -> list[str]:
        """The key holders' roles (empty: no holders, the simulate backend)."""
        return list(self.market.holders)

    @property
    def holder_threshold(self) -> int:
        return self.market.holder_threshold

    @property
    def slots(self) -> int:
        """One-time decryption slots dealt at setup: round r uses slot r - 1 (0: no holders)."""
        return self.market.slots

    def threshold_setup(self):
        """The public threshold setup record (crypto.threshold.ThresholdSetup), hash-checked against market.json."""
        return ThresholdSetup.from_bytes(self.blobs.get(self.digest("threshold_setup")))

    @property
    def input_proofs(self) -> bool:
        """Whether dealers prove their encrypted reports (a CRS is published): ``--input-proofs``."""
        return self.market.input_proofs

    @property
    def owner_parameters(self) -> str | None:
        """The name of the TFHE-rs parameter record dealers encrypt with (None on the simulate backend)."""
        return None if self.backend == "simulate" else self.market.owner_parameters

    def public_key(self) -> bytes:
        """The market's public key blob (dealers encrypt under it), hash-checked against market.json."""
        return self.blobs.get(self.digest("public_key"))

    def crs(self) -> bytes | None:
        """The input-proof CRS blob when proofs are on, else None."""
        return self.blobs.get(self.digest("crs")) if self.input_proofs else None

    def terms_digest(self) -> bytes:
        """The terms digest market.json implies (market terms, parameter record, public key, CRS): the contract's
        must equal it."""
        m = self.market
        holders = (threshold_terms(m.holders, m.holder_threshold, m.digest("threshold_setup"), m.slots)
                   if m.holders else None)
        return market_terms_digest(m.terms, owner_encryption_terms(
            m.owner_parameters, m.owner_parameters_sha256, m.digest("public_key"),
            m.digest("crs") if m.input_proofs else None), holders)

    def identity(self, role: str):
        try:
            return PublicIdentity.from_dict(dict(self.market.identities[role]))
        except KeyError:
            raise DeploymentError(f"market.json has no public identity for role {role!r}") from None

    def binding(self, purpose: str, round_id: int, sender: str, recipient: str):
        """The binding of a sealed message of this market (``crypto.envelope.Binding``): what a sender seals to and
        a recipient (or the auditor) checks -- purpose, chain, contract, round, sender and recipient roles."""
        return Binding(purpose, self.chain_id, self.contract_address, int(round_id), sender, recipient)

    def address(self, role: str) -> str:
        return self.market.address(role)

    def role_of(self, address: str) -> str | None:
        """The role published with ``address`` (case-insensitive), or None for an address that is no role's: a
        caller that shows it keeps the address then (``dep.role_of(a) or a``)."""
        return self.market.role_of(address)

    # --- shared services ---------------------------------------------------------------------------------
    @cached_property
    def blobs(self) -> BlobStore:
        return BlobStore(self.data_dir.blobs)

    @property
    def chain(self):
        if self._chain is None:
            external = tuple(role for role, source in self.market.account_sources.items() if source != "dev-seed")
            self._chain = connect(self.data_dir.root, self.rpc_url, seed=self.market.seed,
                                  read_only=self.read_only, accounts=self.signers or None, external_roles=external)
        return self._chain

    @cached_property
    def coordinator(self):
        return Coordinator(self.chain, self.contract_address)

    @cached_property
    def onchain_terms(self):
        """The Coordinator's deployment terms (immutable after deployment: read once per process)."""
        return self.coordinator.terms()

    def circuit(self):
        circuit = load_circuit(self.terms, circuit_cache(self.data_dir))
        if circuit.artifact_digest != self.digest("circuit"):
            raise DeploymentError(
                f"compiled circuit digest {circuit.artifact_digest.hex()} differs from the published "
                f"{self.digest('circuit').hex()}")
        return circuit


DEV_KEYS_WARNING = ("every chain account of this market is derived from a public seed: anyone who knows the "
                    "seed can sign for every role. Development only: never hold real value with these keys.")


def accounts_record(sources: dict[str, str]) -> dict:
    """market.json's ``accounts``: kind (dev-seed, external or mixed), per-role source, a warning in words."""
    dev = sorted(role for role, source in sources.items() if source == "dev-seed")
    kind = "dev-seed" if len(dev) == len(sources) else "external" if not dev else "mixed"
    record = {"kind": kind, "roles": dict(sorted(sources.items()))}
    if dev:
        record["warning"] = DEV_KEYS_WARNING if kind == "dev-seed" else (
            f"the chain accounts of {', '.join(dev)} are derived from a public seed: anyone who knows the seed can "
            "sign for them. Development only.")
    return record


def check_signers(market: MarketDescriptor, signers: dict) -> None:
    """Supplied key files/keystores must be the accounts market.json records for their roles."""
    addresses = market.addresses
    for role, account in signers.items():
        if role not in addresses:
            raise DeploymentError(f"--key-file/--keystore {role}: the market has no role {role!r}")
        if account.address.lower() != addresses[role].lower():
            raise DeploymentError(f"--key-file/--keystore {role}: its account is {account.address}, the market's "
                                  f"{role} is {addresses[role]}")


def missing_signers(dep: "Deployment") -> list[str]:
    """Roles market.json records with their own keys for which no key file/keystore was given (a role that
    acts, e.g. a demo run, needs every one; the auditor needs none)."""
    return sorted(role for role, source in dep.market.account_sources.items()
                  if source != "dev-seed" and role not in dep.signers)


def open_market(data_dir: Path, rpc_url: str | None = None, signers: dict | None = None, *,
                read_only: bool = False) -> Deployment:
    """The public view of the market in ``data_dir``; ``read_only`` (the auditor) writes nothing there.
    ``signers``: role -> ChainAccount (key files / keystores) for the roles that act with their own keys."""
    layout = DataDir(Path(data_dir))
    if not layout.market_file.exists():
        raise DeploymentError(f"{layout.market_file}: no market here (run `repo-market demo` to create one)")
    dep = Deployment(layout, read_json(layout.market_file), rpc_url, signers=dict(signers or {}), read_only=read_only)
    market = dep.market  # parsed and checked once, here: a malformed market.json is refused before anything runs
    if rpc_url is None:
        dep.rpc_url = market.rpc_url
    check_signers(market, dep.signers)
    return dep


def published_coordinator_terms(dep: Deployment):
    """The CoordinatorTerms that market.json publishes (what the contract's immutables must equal).

    Raises DeploymentError naming what market.json lacks."""
    m = dep.market
    if m.windows is None:
        raise DeploymentError("market.json publishes no phase windows (created before they were published)")
    try:
        windows = PhaseWindows(**m.windows)
    except TypeError as exc:
        raise DeploymentError(f"market.json windows {dict(m.windows)}: not the contract's phase windows "
                              f"({exc})") from None
    return build_coordinator_terms(
        m.terms, deposit_minimum=m.deposit_minimum_wei, terms_digest=dep.terms_digest(),
        circuit_digest=m.digest("circuit"), evaluation_keys_digest=m.digest("evaluation_keys"),
        identities_digest=identities_digest(m.published_identities()), addresses=m.addresses,
        evaluators=m.evaluators, threshold=m.threshold, holders=m.holders, holder_threshold=m.holder_threshold,
        windows=windows)


def build_coordinator_terms(terms, *, deposit_minimum: int, terms_digest: bytes, circuit_digest: bytes,
                            evaluation_keys_digest: bytes, identities_digest: bytes, addresses, evaluators,
                            threshold: int, holders, holder_threshold: int, windows):
    """The Coordinator's deployment terms (``chain.CoordinatorTerms``) of a market: its terms' fields, the digests,
    the addresses of the dealers, the custodian, the evaluators and the holders (``addresses``: role -> address;
    ``evaluators``/``holders``: roles, in the contract's order) and the phase windows. One builder for the
    contract ``create_market`` deploys and the one ``published_coordinator_terms`` reads back from market.json."""
    return CoordinatorTerms(
        grid=terms.grid, base_rate=terms.base_rate, rate_bits=terms.rate_bits, hurdle_mode=terms.hurdle_mode.value,
        deposit_minimum=int(deposit_minimum), terms_digest=terms_digest, circuit_digest=circuit_digest,
        evaluation_keys_digest=evaluation_keys_digest, identities_digest=identities_digest,
        dealer_mm=addresses[DEALER_MM], dealer_rm=addresses[DEALER_RM], custodian=addresses[CUSTODIAN],
        evaluators=tuple(addresses[r] for r in evaluators), threshold=int(threshold),
        holders=tuple(addresses[r] for r in holders), holder_threshold=int(holder_threshold), windows=windows)


def _deal_to_holders(custodian_side, circuit, params, layout: DataDir, blobs: BlobStore, slots: int) -> bytes:
    """The custodian as trusted dealer: the output key k-of-n and ``slots`` one-time slots to the holders' folders,
    the public setup record into the blob store, then the custodian's own secret keys destroyed. Returns the
    setup record's digest (a term of the market)."""
    encoding = read_output_encoding(circuit.client_specs.program_info.serialize())  # before any output exists
    folders = {holder: layout.holder_dir(holder) for holder in params.holders}
    setup = deal_key(custodian_side.keys.keyset_bytes(), encoding, params, folders)
    deal_slots(setup, folders, range(slots))
    setup_digest = blobs.put(setup.to_bytes())
    custodian_side.keys.destroy_secret_keys()
    return setup_digest


def create_market(data_dir: Path, terms, *, backend: str, evaluators: int = 2, threshold: int = 2,
                  rpc_url: str | None = None, seed: int = 0, windows=None, progress=None,
                  signers: dict | None = None, input_proofs: bool = False, holders: int = 3,
                  holder_threshold: int = 2, slots: int = DEFAULT_SLOTS) -> Deployment:
    """Create every role's keys, the FHE keys, the circuit blobs and the contract; write market.json.

    ``holders``/``holder_threshold``/``slots`` (``fhe`` only): the custodian deals the output key k-of-n to
    ``key_holder_1..n`` and ``slots`` one-time decryption slots, then destroys its own secret keys; the
    simulate backend has no key, hence no holders (these are ignored there).

    ``input_proofs``: dealers prove their encrypted reports; the custodian generates a CRS once per deployment
    and its digest goes into the terms digest (the simulate backend has no proofs).
    ``signers``: role -> ChainAccount from key files / keystores (``--rpc`` only); the other roles use dev keys
    derived from ``seed`` and market.json says so. ``progress(stage: str)`` is called before each slow step.  Returns the public deployment plus, in
    ``Deployment.descriptor["timings"]``, how long each step took.
    """
    if backend not in BACKENDS:
        raise DeploymentError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if input_proofs and backend != "fhe":
        raise DeploymentError(f"--input-proofs needs --backend fhe (the {backend} backend has no ciphertexts to prove)")
    if not 1 <= threshold <= evaluators:
        raise DeploymentError(f"threshold must be in 1..{evaluators} (evaluators), got {threshold}")
    holder_roles = key_holder_roles(holders) if backend == "fhe" else []
    params = None
    if holder_roles:
        try:
            params = ThresholdParams(tuple(holder_roles), holder_threshold)
        except ThresholdSetupError as exc:
            raise DeploymentError(f"--holders {holders} --holder-threshold {holder_threshold}: {exc}") from None
        if type(slots) is not int or not 1 <= slots <= MAX_SLOTS:
            raise DeploymentError(f"slots must be in 1..{MAX_SLOTS}, got {slots!r}")
    note = progress or (lambda stage: None)
    layout = DataDir(Path(data_dir))
    if layout.exists():
        raise DeploymentError(f"{layout.market_file} exists: a market is already deployed there")
    signers = dict(signers or {})
    if signers and rpc_url is None:
        raise DeploymentError("key files and keystores need --rpc: the embedded chain uses dev keys")
    timings: dict[str, float] = {}

    def timed(name, fn):
        note(name)
        start = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - start, 4)
        return out

    roles = identity_roles(evaluators)
    unknown = sorted(set(signers) - {*roles, *holder_roles, DEPLOYER})
    if unknown:
        raise DeploymentError(f"--key-file/--keystore {unknown[0]}: not a role of this market "
                              f"({', '.join([*roles, *holder_roles, DEPLOYER])})")
    # first the chain and every role's account: a node that refuses dev keys for a role without its own key
    # fails here, before any key, blob or contract exists
    chain = timed("connect chain", lambda: connect(layout.root, rpc_url, seed=seed, accounts=signers or None))
    addresses = {role: chain.address(role) for role in [*roles, *holder_roles]}
    chain.address(DEPLOYER)
    blobs = BlobStore(layout.blobs)
    identities = {}
    for role in roles:
        keys_dir = layout.identity_dir(role)
        if (keys_dir / PUBLIC_IDENTITY_FILE).exists():
            keys = IdentityKeys.load(keys_dir, role=role)  # a previous attempt crashed half-way
        else:
            keys = IdentityKeys.generate(role)
            keys.save(keys_dir)
        identities[role] = keys.public.as_dict()

    circuit = timed("compile circuit", lambda: load_circuit(terms, circuit_cache(layout)))
    custodian_side = timed("generate FHE keys", lambda: CustodianSide.open(
        backend, circuit, layout.fhe_keys_dir(CUSTODIAN), create=True, input_proofs=input_proofs))
    evaluation_keys = timed("serialize evaluation keys", custodian_side.evaluation_keys)
    circuit_digest = blobs.put(circuit.artifact_bytes)
    keys_digest = blobs.put(evaluation_keys)
    public_key_digest = blobs.put(custodian_side.public_key())
    crs = custodian_side.crs() if input_proofs else None
    if input_proofs and crs is None:
        raise DeploymentError("--input-proofs: the custodian's keys hold no CRS")
    crs_digest = None if crs is None else blobs.put(crs)
    parameters, parameters_digest = custodian_side.parameters()
    setup_digest, key_holders = None, None
    if params is not None:
        setup_digest = timed("deal key to holders", lambda: _deal_to_holders(custodian_side, circuit, params, layout,
                                                                             blobs, slots))
        key_holders = threshold_terms(holder_roles, holder_threshold, setup_digest, slots)
    terms_digest = market_terms_digest(terms, owner_encryption_terms(parameters, parameters_digest,
                                                                     public_key_digest, crs_digest), key_holders)
    signers_digest = identities_digest(identities)

    coordinator_terms = build_coordinator_terms(
        terms, deposit_minimum=deposit_minimum_wei(terms), terms_digest=terms_digest, circuit_digest=circuit_digest,
        evaluation_keys_digest=keys_digest, identities_digest=signers_digest, addresses=addresses,
        evaluators=evaluator_roles(evaluators), threshold=threshold, holders=holder_roles,
        holder_threshold=holder_threshold if holder_roles else 0, windows=windows or PhaseWindows())
    coordinator: Coordinator = timed("deploy contract", lambda: deploy_coordinator(chain, coordinator_terms))
    descriptor = {
        "format": MARKET_FORMAT,
        "backend": backend,
        "terms": terms.as_dict(),
        "digests": {"terms": terms_digest.hex(), "circuit": circuit_digest.hex(),
                    "evaluation_keys": keys_digest.hex(), "identities": signers_digest.hex(),
                    "public_key": public_key_digest.hex(), "crs": None if crs_digest is None else crs_digest.hex(),
                    "threshold_setup": None if setup_digest is None else setup_digest.hex()},
        # the digests of the public key and CRS are under "digests"; the terms digest covers all of it
        "owner_encryption": {"parameters": parameters,
                             "parameters_sha256": None if parameters_digest is None else parameters_digest.hex()},
        "chain": {"rpc_url": rpc_url, "chain_id": chain.chain_id, "seed": seed, "backend": chain.backend},
        "contract": coordinator.address,
        # [decided] published so that an auditor checks the contract's immutables against market.json, and
        # knows from which block the contract's history starts
        "windows": coordinator_terms.windows.as_dict(),
        "deployed_at": {"block": coordinator.deployment.block_number, "tx": coordinator.deployment.tx_hash},
        "deposit": {"minimum_wei": coordinator_terms.deposit_minimum, "wei_per_cash_unit": WEI_PER_CASH_UNIT},
        "evaluators": {"roles": evaluator_roles(evaluators), "threshold": threshold},
        # [decided] the simulate backend has no key, hence no holders: an empty list and k = 0
        "key_holders": {"roles": holder_roles, "threshold": holder_threshold if holder_roles else 0,
                        "slots": slots if holder_roles else 0},
        "identities": identities,
        "addresses": addresses,
        "accounts": accounts_record({role: chain.account_source(role) for role in [*roles, DEPLOYER]}),
        "endowment": dict(ENDOWMENT),
        "timings": timings,
    }
    write_json(layout.market_file, descriptor)  # last: its presence marks a complete market
    return Deployment(layout, descriptor, rpc_url, chain, signers=signers)
