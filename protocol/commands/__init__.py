"""One module per ``repo-market`` subcommand; see :mod:`protocol.cli`."""
