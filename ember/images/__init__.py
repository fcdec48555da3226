"""Images: from a zip holding a Dockerfile to an image snapshot that VMs are cloned from.

Modules: ``artifact`` (fetch and unpack safely), ``dockerfile`` (parse and plan),
``bases`` (managed base images), ``steps`` (one step in a build VM), ``builder``
(the pipeline).
"""
