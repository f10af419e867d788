"""The consoles the CLI prints with: data as data.

Case ids, subjects, reasons and vendor messages come from helpdesks, that is from customers:
printed through rich's defaults, ``[red]`` in a subject would be markup and ``:ticket:`` in a
case id an emoji. These consoles interpret neither; what the CLI styles on purpose it styles
with :class:`rich.text.Text`.
"""

from __future__ import annotations

from rich.console import Console

__all__ = ["plain_console"]


def plain_console(*, stderr: bool = False, soft_wrap: bool = False) -> Console:
    """A console that prints strings verbatim: no markup, no emoji codes, no highlighting."""
    return Console(markup=False, emoji=False, highlight=False, stderr=stderr, soft_wrap=soft_wrap)
