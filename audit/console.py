"""The ``faceaudit`` console script. The command line's imports (torch, matplotlib, pandera) take seconds, and a
Ctrl-C meanwhile printed a 30-40-line traceback before :func:`audit.cli.main` could catch it; it prints one line."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from audit.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    cli_main()
