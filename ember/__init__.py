"""Ember: isolated, stateful microVM sandboxes cloned from snapshots.

This file stays import-free: the guest runtime disk carries ``ember.guest``
under the same package and must not pull host-side dependencies.
"""

__version__ = "0.1.0"
