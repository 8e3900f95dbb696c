"""The ``limelight`` command line.

Each module in this package registers its commands through ``register(app)``; they are
discovered at start-up, so a new command group is one new file. Heavy imports happen inside
the commands, keeping ``limelight --help`` fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from limelight.cli.common import fail
from limelight.errors import LimelightError

app = typer.Typer(
    name="limelight",
    help="Limelight: personalized recommendation and precision marketing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "common":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    """Console entry point: user mistakes end with one line and exit code 2, not a traceback."""
    try:
        app()
    except LimelightError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
