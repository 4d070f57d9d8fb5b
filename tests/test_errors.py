"""Every error class of the project derives from its package's base, which the command line catches: a new
error can never turn into an "internal error" because a list by hand missed it."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

from protocol import cli

PACKAGES = ("common", "market", "crypto", "chain", "protocol")

# Control flow of the command line itself, not failures of a package: usage errors (exit 2), a command's own
# non-zero status, and a write error that is reported as an OSError of the environment.
CLI_OWN = {"UsageError", "_ParserUsageError", "_FailedWithStatus", "WriteError"}


def _project_exceptions() -> list[type]:
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            importlib.import_module(info.name)
    found, todo = [], [BaseException]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in PACKAGES:
            found.append(cls)
    return found


def test_every_error_of_protocol_derives_from_its_one_base():
    """The command line catches one class per package: no protocol error is listed there by hand."""
    from protocol.errors import ProtocolPackageError

    outside = [f"{c.__module__}.{c.__qualname__}" for c in _project_exceptions()
               if c.__module__.startswith("protocol.") and not issubclass(c, ProtocolPackageError)
               and not (c.__module__ == "protocol.cli" and c.__name__ in CLI_OWN)]
    assert outside == []
    assert len(cli._project_errors()) == len(PACKAGES)  # JsonInputError is common's


def test_every_error_of_the_project_is_caught_by_the_command_line():
    caught = cli._project_errors()
    missed = [f"{c.__module__}.{c.__qualname__}" for c in _project_exceptions()
              if not issubclass(c, caught) and not (c.__module__ == "protocol.cli" and c.__name__ in CLI_OWN)]
    assert missed == []


@pytest.mark.parametrize("error, base", [
    ("market.schedules.ScheduleError", "market.errors.MarketError"),
    ("market.limits.LimitError", "market.errors.MarketError"),
    ("chain.errors.JournalError", "chain.errors.ChainPackageError"),
    ("chain.node.NodeError", "chain.errors.ChainPackageError"),
    ("crypto.tfhers.parameters.TestOnlyParametersError", "crypto.errors.CryptoError"),
    ("protocol.attestation.StatementError", "protocol.errors.ProtocolPackageError"),
    ("protocol.roles.ProtocolError", "protocol.errors.ProtocolPackageError"),
    ("protocol.backend.BackendError", "protocol.errors.ProtocolPackageError"),
    ("protocol.demo.DemoConflict", "protocol.errors.ProtocolPackageError"),
    ("protocol.deployment.DeploymentError", "protocol.errors.ProtocolPackageError"),
    ("protocol.layout.DataDirError", "protocol.errors.ProtocolPackageError"),
    ("protocol.layout.DataDirLocked", "protocol.errors.ProtocolPackageError"),
])
def test_each_package_has_one_base(error, base):
    def load(name):
        module, _, attr = name.rpartition(".")
        return getattr(importlib.import_module(module), attr)

    assert issubclass(load(error), load(base))


def test_an_error_without_a_list_entry_is_one_line_not_an_internal_error(capsys):
    from protocol.attestation import StatementError  # listed nowhere by hand

    args = cli.build_parser().parse_args(["equilibria", "--linear", "400", "460", "2", "1", "--grid", "10"])
    args._given = frozenset()

    def fail(_args):
        raise StatementError("attestation of round 3: signature does not verify")

    args._run, args._validate = fail, None
    assert cli._dispatch(None, args) == 1
    err = capsys.readouterr().err
    assert err == "repo-market equilibria: error: attestation of round 3: signature does not verify\n"
