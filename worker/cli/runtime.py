"""``followup run``, ``serve``, ``dry-run`` and ``history``: the commands ops run the worker with.

Every flag has a ``FOLLOWUP_*`` twin (shown in ``--help``). ``--dry-run/--live``'s twin is
``FOLLOWUP_DRY_RUN``: the environment sets the default, the runtime switch
(``followup dry-run on|off``) overrides it, an explicit flag overrides both - except that a
switch turned *on* is a brake nothing overrides (see :func:`worker.delivery.decisions.run_mode`).

Exit codes: 0 all good (also after a graceful SIGTERM), 1 something due was not done, 2 the
worker could not start (bad setting, unreachable ledger); the reason is one line on stderr.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from dotenv import dotenv_values
from rich.table import Table

from worker.cli.policies import SettingOption
from worker.cli.printed_plan import PlanSpool, plan_spool, print_json, print_tables
from worker.console import console_setup
from worker.delivery.decisions import run_mode
from worker.delivery.ledger import Attempt, Ledger, LedgerError
from worker.logs import configure_logging
from worker.runtime.badrecords import unreadable_mentions
from worker.runtime.cycle import CycleSummary, Runtime
from worker.runtime.service import ListenError, run_once, serve
from worker.runtime.switches import dry_run_switch, set_dry_run_switch
from worker.runtime.tenants import TenantRoster, load_tenants
from worker.runtime.web import webhook_setup
from worker.runtime.wiring import WiringError, open_lease_keeper, open_runtime, unresolved_names
from worker.settings import (
    ENV_PREFIX,
    Settings,
    SettingsError,
    load_settings,
    unknown_variables,
)
from worker.terminal import plain_console

__all__ = ["fail", "register", "start"]

_out = plain_console(soft_wrap=True)


# The app these commands were registered on: its whole tree names the flags' variables.
_registered_on: list[typer.Typer] = []


def register(app: typer.Typer) -> None:
    _registered_on.append(app)
    app.command("run")(run)
    app.command("serve")(serve_command)
    app.command("dry-run")(dry_run_command)
    app.command("history")(history)


def fail(message: str) -> NoReturn:
    typer.echo(f"followup: {message}", err=True)
    raise typer.Exit(2)


def start(
    policy_flags: list[str] | None = None, **overrides: object
) -> tuple[Settings, TenantRoster, Ledger]:
    """Settings, tenants, logging and the (migrated) ledger, or one line on stderr and exit 2.
    ``policy_flags``: ``--set`` pairs, added after ``FOLLOWUP_POLICY_SETTINGS``'s (they win)."""
    environment = _environment()
    for line in unknown_variables(environment, _flag_variables()):
        typer.echo(f"followup: {line}", err=True)
    if policy_flags:
        given = environment.get(f"{ENV_PREFIX}POLICY_SETTINGS", "")
        overrides["policy_settings"] = ";".join([given, *policy_flags])
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
        roster = load_tenants(settings)
    except SettingsError as exc:
        fail(str(exc))
    configure_logging(
        secrets=settings.secret_values() | roster.secret_values(),
        log_format=settings.log_format,
        level=settings.log_level,
    )
    try:
        return settings, roster, Ledger.open(settings.database_url)
    except LedgerError as exc:
        fail(str(exc))


def _environment() -> dict[str, str]:
    """What the settings are read from: the ``.env`` file, then the environment."""
    dotenv = (
        {k: v or "" for k, v in dotenv_values(".env").items()} if Path(".env").is_file() else {}
    )
    return {**dotenv, **os.environ}


def _flag_variables() -> set[str]:
    """The environment twins of every flag of every command (typer's ``envvar=``) of the app
    these commands were registered on (the module that builds it imports this one)."""
    found: set[str] = set()
    pending: list[Any] = [typer.main.get_command(app) for app in _registered_on]
    while pending:
        command = pending.pop()
        for param in command.params:
            envvar = param.envvar
            found.update([envvar] if isinstance(envvar, str) else envvar or [])
        pending.extend(getattr(command, "commands", {}).values())  # a group's subcommands
    return found


def _instant(text: str | None, zone: ZoneInfo) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO-8601 instant: {text!r}", param_hint="--at") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def run(
    once: Annotated[
        bool, typer.Option("--once", envvar="FOLLOWUP_ONCE", help="Run one cycle and exit.")
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(
            envvar="FOLLOWUP_AT",
            help="Plan as of this ISO-8601 instant (default: now); no offset means "
            "FOLLOWUP_TIMEZONE.",
        ),
    ] = None,
    dry_run: Annotated[
        bool | None,
        typer.Option(
            "--dry-run/--live",
            help="Write nothing / write to the vendors. Default: FOLLOWUP_DRY_RUN, overridden "
            "by the runtime switch; the switch turned on beats --live.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", envvar="FOLLOWUP_JSON", help="Print the summary as JSON."),
    ] = False,
    policy_settings: SettingOption = None,
) -> None:
    """Run one fetch -> plan -> execute cycle; exit 1 if any due follow-up was not done."""
    if not once:
        fail("`run` needs --once (use `followup serve` to run on a schedule)")
    settings, roster, ledger = start(policy_settings)
    with plan_spool() as spool:
        try:
            summary = asyncio.run(
                _run_once(settings, roster, ledger, _instant(at, settings.zone), dry_run, spool)
            )
        except (WiringError, LedgerError) as exc:
            fail(str(exc))
        finally:
            ledger.close()
        if as_json:
            print_json(summary, spool, sys.stdout)
        else:
            print_tables(summary, spool, _out)
    raise typer.Exit(0 if summary.ok else 1)


async def _run_once(
    settings: Settings,
    roster: TenantRoster,
    ledger: Ledger,
    at: datetime,
    dry_run: bool | None,
    spool: PlanSpool,
) -> CycleSummary:
    with open_lease_keeper(settings) as leases:
        async with open_runtime(settings, ledger, roster=roster, leases=leases) as runtime:
            await _names_resolve_for_live(runtime, settings, ledger, dry_run)
            spool.listen(runtime)
            return await run_once(runtime, at=at, dry_run=dry_run)


async def _names_resolve_for_live(
    runtime: Runtime, settings: Settings, ledger: Ledger, flag: bool | None
) -> None:
    """A live run starts only once every name its tenants' mappings give resolves (or is
    accepted): a missing group or field would otherwise leave cases "not judged", or their
    follow-ups half done, without a word why. Raises WiringError, one line per name."""
    mode = run_mode(flag=flag, switch=dry_run_switch(ledger), configured=settings.dry_run)
    if mode.dry_run:
        return
    unresolved = await unresolved_names(runtime)
    if unresolved:
        raise WiringError(
            "nothing written: the tenant mapping names what the vendor does not have "
            "(fix the mapping, or list the name under accept_unresolved):\n" + "\n".join(unresolved)
        )


def serve_command(
    host: Annotated[
        str | None, typer.Option(envvar="FOLLOWUP_HTTP_HOST", help="Bind address.")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(envvar="FOLLOWUP_HTTP_PORT", help="Port of /healthz /readyz /metrics."),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(envvar="FOLLOWUP_SCHEDULE", help="Cron expression, in FOLLOWUP_TIMEZONE."),
    ] = None,
    every: Annotated[
        float | None,
        typer.Option(
            envvar="FOLLOWUP_EVERY", help="Run a cycle every this many seconds instead.", min=0.1
        ),
    ] = None,
    policy_settings: SettingOption = None,
) -> None:
    """Run cycles on a schedule; serve health, readiness, metrics, the dry-run switch and the
    ops console (/console)."""
    settings, roster, ledger = start(
        policy_settings, http_host=host, http_port=port, schedule=schedule, every=every
    )
    try:
        asyncio.run(_serve(settings, roster, ledger))
    except (WiringError, ListenError, LedgerError) as exc:
        fail(str(exc))
    finally:
        ledger.close()


async def _serve(settings: Settings, roster: TenantRoster, ledger: Ledger) -> None:
    with open_lease_keeper(settings) as leases:
        async with open_runtime(settings, ledger, roster=roster, leases=leases) as runtime:
            await _names_resolve_for_live(runtime, settings, ledger, None)
            await serve(
                runtime,
                trigger=_trigger(settings),
                host=settings.http_host,
                port=settings.http_port,
                admin_token=(
                    settings.admin_token.get_secret_value() if settings.admin_token else None
                ),
                console=console_setup(settings, roster, runtime),
                webhooks=webhook_setup(settings),
            )


def _trigger(settings: Settings) -> BaseTrigger:
    if settings.every is not None:
        return IntervalTrigger(seconds=settings.every, timezone=settings.zone)
    return CronTrigger.from_crontab(settings.schedule, timezone=settings.zone)


class SwitchCommand(StrEnum):
    ON = "on"
    OFF = "off"
    STATUS = "status"


def dry_run_command(
    state: Annotated[SwitchCommand, typer.Argument(help="on, off or status.")],
    by: Annotated[
        str | None,
        typer.Option(envvar="FOLLOWUP_OPERATOR", help="Who flips it (default: login name)."),
    ] = None,
    reason: Annotated[
        str,
        typer.Option(
            envvar="FOLLOWUP_SWITCH_REASON",
            help="Why, for the audit list (required to go live with `off`).",
        ),
    ] = "",
) -> None:
    """Flip dry-run for every worker sharing the ledger, without a restart."""
    # Going live needs a reason, as on the console; turning dry-run on is the safe direction
    # and is never held up.
    if state is SwitchCommand.OFF and not reason.strip():
        _out.print("dry-run off needs --reason: why the worker may write (kept in the audit list)")
        raise typer.Exit(2)
    settings, _, ledger = start()
    try:
        if state is not SwitchCommand.STATUS:
            set_dry_run_switch(
                ledger,
                state is SwitchCommand.ON,
                by=by or getpass.getuser(),
                at=datetime.now(UTC),
                reason=reason.strip(),
            )
        mode = run_mode(flag=None, switch=dry_run_switch(ledger), configured=settings.dry_run)
    finally:
        ledger.close()
    _out.print(f"dry-run: {'ON' if mode.dry_run else 'OFF'} ({mode.why})")


def history(
    case_ref: Annotated[
        str, typer.Argument(help="zendesk:1234, intercom:..., asana:...; a bare id matches any.")
    ],
    tenant: Annotated[
        str | None,
        typer.Option(help="Only this tenant's case (tenants' helpdesks can share ticket ids)."),
    ] = None,
) -> None:
    """What the worker did (or planned) to a case, and why; and whether it could be read."""
    settings, _, ledger = start()
    try:
        attempts = ledger.history(case_ref, tenant=tenant)
        unreadable = unreadable_mentions(ledger, case_ref, tenant=tenant)
    finally:
        ledger.close()
    if not attempts and not unreadable:
        _out.print(f"no record of {case_ref}")
        return
    if attempts:
        _print_attempts(case_ref, attempts, settings.zone)
    if unreadable:
        cycle, of_tenant, bad = unreadable[0]
        earlier = f" (and in {len(unreadable) - 1} earlier cycles)" if len(unreadable) > 1 else ""
        _out.print(
            f"{bad.vendor}:{bad.record_id} of {of_tenant} was unreadable in cycle {cycle.id} "
            f"({cycle.at.astimezone(settings.zone):%a %Y-%m-%d %H:%M}){earlier}: {bad.reason}; "
            "an unreadable record gets no follow-up until it is fixed in the helpdesk"
        )


def _print_attempts(case_ref: str, attempts: list[Attempt], zone: ZoneInfo) -> None:
    # Tenants' helpdesks can share ticket ids: when the rows are about several, each says whose.
    per_tenant = len({attempt.tenant for attempt in attempts}) > 1
    table = Table(title=f"history of {case_ref}")
    for column in ("when", "tenant", "mode", "policy / rule", "step", "actions", "outcome", "why"):
        if column != "tenant" or per_tenant:
            table.add_column(column)
    for attempt in attempts:
        outcome = attempt.outcome.value if attempt.outcome else "no outcome (pending)"
        detail = f"\n{attempt.detail}" if attempt.detail else ""
        table.add_row(
            f"{attempt.at.astimezone(zone):%a %Y-%m-%d %H:%M}",
            *([attempt.tenant] if per_tenant else []),
            "dry-run" if attempt.dry_run else "live",
            f"{attempt.policy} / {attempt.rule}",
            f"{attempt.step}/{attempt.max_steps}",
            ", ".join(str(action["type"]) for action in attempt.actions),
            outcome,
            f"{attempt.reason}{detail}",
        )
    _out.print(table)
