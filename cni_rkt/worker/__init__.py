"""The pre-loaded worker: start-up paid once, not per exec.

A launcher is a tiny stdlib-only client (`client.py`) that hands one invocation (environment,
stdin, the caller's network and mount namespaces, cwd, stderr) over a unix socket to a
long-lived process (`server.py`) that has already imported the plugins. The server hands
each request to one of its children (`pool.py`), which enters the caller's namespaces,
adopts its environment and runs `protocol.runner.run` (`request.py`), exactly what the
launcher would run in-process, then puts its own context back for the next caller. When no
worker answers, the launcher runs in-process and starts one for next time.
"""
