"""A stateful local stand-in for the Zendesk, Intercom and Asana APIs. Imports nothing of the product."""
