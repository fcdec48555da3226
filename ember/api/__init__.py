"""The control-plane REST API (rest-json over HTTP, SigV4): ``create_app(ctx)`` serves every operation.

Modules: ``app`` (the aiohttp application and its middleware), ``routes`` (the route table), ``auth`` (SigV4),
``errors`` (the one table from Ember's errors to the contract's), the handlers ``images``, ``versions``,
``managed``, ``microvms``, ``auth_tokens``, ``tags``, ``logs``, ``artifacts`` (uploads), ``account`` (the caller's
account, quotas and usage), ``quotas`` (rate and capacity limits),
``openapi`` (the generated document), ``context`` (what handlers may use) and ``testing`` (fakes for tests).
"""

from ember.api.app import create_app
from ember.api.context import ApiContext, Quotas

__all__ = ["ApiContext", "Quotas", "create_app"]
