# pragma version ~=0.4.3
"""
@title A dealer contract that tries to withdraw twice by re-entering the Coordinator
@notice Test fixture only. On receiving ether it calls withdraw() again. In `strict` mode it reverts
        when the re-entry fails, which must make the whole withdrawal fail and change nothing.
"""

interface Coordinator:
    def deposit(): payable
    def withdraw(): nonpayable
    def commit_report(round_id: uint256, commitment: bytes32, blob_commitment: bytes32): nonpayable

target: public(address)
strict: public(bool)
reentry_attempts: public(uint256)
reentry_succeeded: public(bool)
received: public(uint256)


@deploy
def __init__(strict: bool):
    self.strict = strict


@external
def set_target(target: address):
    self.target = target


@external
@payable
def fund_deposit():
    extcall Coordinator(self.target).deposit(value=msg.value)


@external
def open_round(round_id: uint256, commitment: bytes32, blob_commitment: bytes32):
    extcall Coordinator(self.target).commit_report(round_id, commitment, blob_commitment)


@external
def attack():
    extcall Coordinator(self.target).withdraw()


@external
@payable
def __default__():
    self.received += msg.value
    if self.reentry_attempts < 3:
        self.reentry_attempts += 1
        ok: bool = raw_call(self.target, method_id("withdraw()"), revert_on_failure=False)
        if ok:
            self.reentry_succeeded = True
        elif self.strict:
            raise "re-entry refused"
