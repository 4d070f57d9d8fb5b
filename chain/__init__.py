"""On-chain coordinator: Vyper contracts, a web3 client over an embedded EVM or a JSON-RPC node.

Imports nothing of the project. See chain/README.md.
"""
from .accounts import (AUDITOR, CLIENT_MM, CLIENT_RM, CUSTODIAN, DEALER_MM, DEALER_RM, DEPLOYER,
                       ChainAccount, evaluator_role, key_holder_role)
from .artifacts import Artifact, compile_contract
from .client import Chain, TxResult, connect
from .coordinator import (PHASE_TRANSITIONS, PHASE_WINDOW, Coordinator, CoordinatorTerms, ExecutionRecord,
                          WINDOW_NAMES, ForfeitReason, InstructionPreimage, PhaseWindows, RoundPhase, RoundState, ShareStage,
                          Side, StateWord,
                          blob_commitment, deploy_coordinator, instruction_commitment)
from .errors import ChainError, ChainInputError, ChainUnavailable, JournalError
from .events import EventRecord

__all__ = [
    "PHASE_TRANSITIONS", "PHASE_WINDOW", "StateWord", "WINDOW_NAMES",
    "AUDITOR", "CLIENT_MM", "CLIENT_RM", "CUSTODIAN", "DEALER_MM", "DEALER_RM", "DEPLOYER",
    "Artifact", "Chain", "ChainAccount", "ChainError", "ChainInputError", "ChainUnavailable", "Coordinator",
    "CoordinatorTerms", "EventRecord", "ExecutionRecord", "ForfeitReason", "InstructionPreimage", "JournalError",
    "PhaseWindows", "RoundPhase", "RoundState", "ShareStage", "Side", "TxResult", "compile_contract", "connect",
    "blob_commitment", "deploy_coordinator", "evaluator_role", "instruction_commitment", "key_holder_role",
]
