"""The runtime, in layers:

cli/        the ``followup`` command, one module per area
runtime/    the service: one cycle, tenants and leases, scheduler and web endpoints (which
            mount the ops console, ``console/``)
delivery/   the exactly-once path: decisions, executor, ledger; imports nothing above it
settings, logs, metrics: shared by all; demo: the whole thing against the sandbox
"""
