"""A small Django project protected by WinkWSGIMiddleware, mapped to Django users by RemoteUserMiddleware.

It runs in its own interpreter (see ``scenario.py``): Django's settings can be configured only once
per process, and other tests configure them their own way.
"""
