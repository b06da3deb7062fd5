"""What every ``yuqing`` command group shares: bad input ends in one clear line, not a traceback.

A command that fails on what it was given (a missing or malformed file, a
value out of range, settings that do not validate) prints ``error: ...``
on one line to stderr and exits 1. ``YUQING_DEBUG=1`` shows the traceback
instead, for the cases where the error is a bug after all.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup
from typer.exceptions import TyperException

from yuqing.contracts.codec import describe_validation_error

# Errors from input: files, values, settings (pydantic's ValidationError is a ValueError).
INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, LookupError)
EXIT_BAD_INPUT = 1
# The clients of the services a command talks to: their errors (none answers, a request refused)
# say what to fix as well. Looked up among the loaded modules, not imported, so that the
# command tree stays light; a command that raised one has loaded its client.
_SERVICE_ERRORS = (("kafka.errors", "KafkaError", "Kafka"),
                   ("elasticsearch.exceptions", "ElasticsearchException", "Elasticsearch"))


def service_of(exc: BaseException) -> str | None:
    """``Kafka`` or ``Elasticsearch`` when ``exc`` is an error of that service's client."""
    for module, name, service in _SERVICE_ERRORS:
        error = getattr(sys.modules.get(module), name, None)
        if isinstance(error, type) and isinstance(exc, error):
            return service
    return None


def one_line(exc: BaseException) -> str:
    """The error as one line, saying what was wrong with which input."""
    if isinstance(exc, ValidationError):
        return f"{exc.title}: {describe_validation_error(exc)}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if isinstance(exc, LookupError) or not text:
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text


class InputErrorsAsOneLine(TyperGroup):
    """A command group whose commands report bad input in one line (the root group is enough)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (TyperException, typer.Exit, typer.Abort):  # usage errors and exits: Typer's own
            raise
        except BrokenPipeError:
            # The reader went away (`yuqing ... | head`): nothing to report, and nothing
            # more to write -- the interpreter would otherwise fail flushing stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Exception as exc:
            service = service_of(exc)
            if not isinstance(exc, INPUT_ERRORS) and service is None:
                raise
            if os.environ.get("YUQING_DEBUG") == "1":
                raise
            prefix = f"{service}: " if service else ""
            typer.echo(f"error: {prefix}{one_line(exc)}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None


def command_group(help_text: str) -> typer.Typer:
    """A Typer group as every service's CLI makes it."""
    return typer.Typer(help=help_text, no_args_is_help=True, cls=InputErrorsAsOneLine,
                       pretty_exceptions_enable=False)
