"""The pure core: no IO beyond reading policy files, no clock (``now`` is always a parameter).

- ``model``: cases, accounts, activity, actions, plan items, idempotency keys.
- ``calendar``: business days and hours of a tenant (holidays, closures, DST).
- ``language``: what a YAML policy file may say (pydantic), loading a pack and its settings;
  ``yamlsource`` maps validation errors to file:line: field.
- ``selectors``, ``actions``, ``cadences``, ``rules``: policies compiled for speed.
- ``planner``: ``plan``, ``explain`` and ``preview`` (the forward simulation).
- ``due``: ``next_due``, when a case could next be owed anything (the incremental sync's index).
- ``snapshot``: the documented input file of ``followup plan``; ``codec``: cases and accounts
  as JSON (the case store's format, the input file's case shape); ``synthetic``: bench cases.
"""
