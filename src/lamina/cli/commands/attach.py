"""``lamina attach``: Docker's, to a running container through its shim's attach socket."""

from __future__ import annotations

import sys
from argparse import Namespace

from lamina.cli.command import arg, boolean, command
from lamina.cli.context import Context


@command(
    arg(
        "--detach-keys",
        help="Override the key sequence for detaching a container (default: ctrl-p,ctrl-q).",
    ),
    arg("--no-stdin", action="store_true", help="Do not attach STDIN."),
    arg(
        "--sig-proxy",
        type=boolean,
        default=True,
        metavar="BOOLEAN",
        help="Proxy all received signals to the process (default: %(default)s).",
    ),
    arg("container"),
)
def attach(ctx: Context, args: Namespace) -> None:
    """Attach local standard input, output, and error streams to a running container;
    exit with its status, or leave it running with the detach keys (a terminal's only)."""
    code = ctx.engine.containers.attach(
        args.container,
        stdin=not args.no_stdin,
        sig_proxy=args.sig_proxy,
        detach_keys=args.detach_keys,
    )
    if code is None:
        # Docker's CLI reports the detach as the error it is to it: its text, status 1.
        print("read escape sequence", file=sys.stderr)
        ctx.exit_status = 1
    else:
        ctx.exit_status = code
