"""A stateful local stand-in for the Zendesk, Intercom and Asana APIs.

It imports nothing of the product, so it can never agree with the worker by accident.
"""
