"""The web console's server side: sign-in sessions and the console's pages.

The console uses only the public API: a key pair is exchanged once for a session cookie (``sessions``,
``login``), then the page calls the same REST routes as boto3 with the cookie and a CSRF header. Modules:
``app`` (``install`` / ``create_app``), ``sessions``, ``throttle`` (failed sign-ins), ``login``
(``/console/session``), ``static`` (pages and files). The data the pages chart (``GET /ember/metrics``,
``GET /ember/account``) are API extensions (``ember.api.metrics``, ``ember.api.account``). See docs/console.md.
"""

from ember.console.app import create_app, install

__all__ = ["create_app", "install"]
