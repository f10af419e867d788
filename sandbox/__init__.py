"""A stateful local stand-in for the Zendesk, Intercom and Asana APIs the worker uses.

It imports nothing of the product, so it can never agree with the worker by accident.

Run it: ``python -m sandbox [--tickets N] [--seed S] [--port P]`` (``followup-sandbox``);
every flag has a ``SANDBOX_*`` variable. In tests: ``sandbox.server.run_in_thread()`` or
``run_subprocess()``. Load figures: ``python -m sandbox.loadtest``.

Layout, outside in:
  cli, server          the command; uvicorn in the foreground, a thread or a subprocess
  options              flags over ``SANDBOX_*`` variables -> :class:`~sandbox.config.SandboxConfig`
  app                  composition root: the ASGI routes of each tenant
  state                one tenant's :class:`~sandbox.state.Sandbox`: desks, clock, limits, faults
  contract             every request checked against the vendor's OpenAPI description
  gate                 what every vendor request passes: auth, rate limits, faults, log
  limits, faults       requests-per-minute windows; seeded fault injection
  traffic, outbox      request log and counters; messages the customer would have received
  admin                ``/_admin``: clock, activity, outbox, requests, stats, faults, limits
  zendesk(_api|_search), intercom(_api), asana(_api)
                       each vendor's state and behaviour, then its HTTP routes
  generator(_intercom|_asana), tenant
                       the deterministic tenant, built lazily from (seed, id)
"""
