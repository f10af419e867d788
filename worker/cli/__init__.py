"""The `followup` command. Each area registers its commands here; every flag has a
``FOLLOWUP_*`` environment variable twin (typer's ``envvar=``)."""

from __future__ import annotations

import typer

from worker.cli import demo as cli_demo
from worker.cli import policies as cli_policies
from worker.cli import runtime as cli_runtime
from worker.cli import sync as cli_sync
from worker.cli.connectors import connectors_app

__all__ = ["app"]

app = typer.Typer(
    name="followup",
    help="Business-day-aware follow-ups for Zendesk, Intercom and Asana.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


cli_policies.register(app)


@app.callback()
def main() -> None:
    """followup-worker: decide what each customer is owed today, and do it exactly once."""


cli_runtime.register(app)
cli_sync.register(app)
cli_demo.register(app)
app.add_typer(connectors_app, name="connectors")
