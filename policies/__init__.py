"""The pure core: domain model, business calendar, policy language and planner. No IO, no clock."""
