"""The adapters: the ASGI and WSGI middlewares, doing their server's I/O around routing and the
engine.
"""
