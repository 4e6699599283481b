"""The pre-loaded worker: start-up paid once, not per exec.

A launcher is a tiny stdlib-only client (`client.py`) that hands one invocation (environment,
stdin, the caller's network and mount namespaces, cwd, stderr) over a unix socket to a
long-lived process (`server.py`) that has already imported pyroute2 and the plugins.
The server forks a child per request (`request.py`) which enters the caller's namespaces,
adopts its environment and runs `protocol.runner.run`, exactly what the launcher would run
in-process. When no worker answers, the launcher runs in-process and starts one for next time.
"""
