"""Build one tenant's connectors from its vendor settings and mapping.

A vendor is used when its URL and token are set *and* the mapping has a section for it; the
runtime and ``followup connectors check`` both build connectors here.
"""

from __future__ import annotations

import httpx

from connectors.asana import AsanaConnector
from connectors.base import MayPlan, every_case
from connectors.intercom import IntercomConnector
from connectors.mapping import TenantMapping
from connectors.records import Report, log_bad_record
from connectors.settings import ConnectorLimits, VendorEnv
from connectors.zendesk import ZendeskConnector

__all__ = ["VendorConnector", "build_connectors"]

VendorConnector = ZendeskConnector | IntercomConnector | AsanaConnector


def build_connectors(
    env: VendorEnv,
    mapping: TenantMapping,
    limits: ConnectorLimits | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    report: Report = log_bad_record,
    may_plan: MayPlan = every_case,
) -> list[VendorConnector]:
    """``report`` receives each vendor record a stream skips because it cannot be read;
    ``may_plan`` (the rulebook's) spares the per-case evidence reads of cases no policy could
    plan anything for (:data:`connectors.base.MayPlan`)."""
    limits = limits or ConnectorLimits()
    built: list[VendorConnector] = []
    if mapping.zendesk and env.zendesk_url and env.zendesk_email and env.zendesk_token:
        built.append(
            ZendeskConnector.connect(
                env.zendesk_url,
                env.zendesk_email,
                env.zendesk_token.get_secret_value(),
                mapping.zendesk,
                limits=limits.zendesk,
                timeouts=limits.timeouts,
                transport=transport,
                plans=mapping.plans,
                report=report,
            )
        )
    intercom = None
    if mapping.intercom and env.intercom_url and env.intercom_token:
        intercom = IntercomConnector.connect(
            env.intercom_url,
            env.intercom_token.get_secret_value(),
            mapping.intercom,
            limits=limits.intercom,
            timeouts=limits.timeouts,
            transport=transport,
            plans=mapping.plans,
            report=report,
            may_plan=may_plan,
        )
        built.append(intercom)
    if mapping.asana and env.asana_url and env.asana_token:
        built.append(
            AsanaConnector.connect(
                env.asana_url,
                env.asana_token.get_secret_value(),
                mapping.asana,
                limits=limits.asana,
                timeouts=limits.timeouts,
                transport=transport,
                # Bug reporters are Intercom contacts: their updates are emailed from there.
                mailer=None if intercom is None else intercom.email_contact,
                report=report,
                may_plan=may_plan,
            )
        )
    return built
