"""The only code that speaks HTTP to a vendor: Zendesk, Intercom, Asana."""
