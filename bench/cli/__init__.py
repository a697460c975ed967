"""The ``bench`` command line: a thin click group whose subcommands live in their own modules.

Subcommands load lazily so ``bench --help`` starts fast and a broken optional feature
cannot stop the others from running. Each module under ``bench/cli/`` holds one command
(or one sub-group) and delegates to the library API that tests call directly.
"""

from __future__ import annotations

import importlib
import signal
import sys
import warnings

import click

from .. import __version__
from ..errors import BenchError

# Order is the order shown by ``bench --help``: the main job first.
COMMANDS: dict[str, str] = {
    "run": "bench.cli.run:run",
    "compare": "bench.cli.compare:compare",
    "score": "bench.cli.score:score",
    "leaderboard": "bench.cli.leaderboard:leaderboard",
    "train": "bench.cli.train:train",
    "synth": "bench.cli.synth:synth",
    "protocols": "bench.cli.protocols:protocols",
    "models": "bench.cli.models:models",
    "detect": "bench.cli.detect:detect",
    "yaw": "bench.cli.yaw:yaw",
    "align": "bench.cli.align:align",
    "perf": "bench.cli.perf:perf",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:  # the command is not built (yet); anything else is a real bug
                return None
            raise
        return getattr(mod, attr)

    def invoke(self, ctx: click.Context):
        # the library reports what it repairs (a corrupt cache entry rebuilt, a bad run file
        # left out) as warnings: one line each, not Python's file:line form
        python_format, warnings.formatwarning = warnings.formatwarning, _one_line_warning
        previous = _terminate_like_interrupt()
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            # Users get the message (with file:line), not a traceback.
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:
            from ..fileio import ENVIRONMENT_ERRNOS, output_error

            if exc.errno not in ENVIRONMENT_ERRNOS:
                raise  # anything else is a bug: keep its traceback
            click.echo(f"error: {output_error(exc)}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as exc:
            from ..fileio import remove_open_temps

            # outputs are written atomically and temporary folders removed on the way out
            remove_open_temps()
            fresh_line = "\n" if sys.stderr.isatty() else ""  # after a progress bar's \r
            how = "terminated" if isinstance(exc, Terminated) else "interrupted"
            click.echo(f"{fresh_line}{how}: nothing was written for the unfinished step",
                       err=True)
            sys.exit(143 if isinstance(exc, Terminated) else 130)
        finally:
            warnings.formatwarning = python_format
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler's stop, `timeout`, `kill`): unwound as Ctrl-C is, so the
    same clean-up runs (staged outputs and preallocated cache files removed)."""


def _terminate_like_interrupt():
    """Route SIGTERM to :class:`Terminated`; the previous handler, or None off the main
    thread (where no handler can be set)."""
    def handler(signum, frame):
        raise Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bench")
def main() -> None:
    """Pose-robust face recognition benchmark: per-yaw verification for stems and DREAM.

    Main job: ``bench run --protocol cfp-fp --model resnet18-dream``.
    """


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"
