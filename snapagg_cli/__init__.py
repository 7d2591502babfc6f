"""snapagg's command-line client: posts event files and reads days over the HTTP API.

A client like any other: it talks only to the API (docs/api.md) and imports nothing of the
server, so it runs on any machine with the package installed.
"""
