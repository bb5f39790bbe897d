"""The control API: drive a running fakepm from any language, over HTTP and JSON.

    fakepm serve scenarios/shop.yaml --admin 127.0.0.1:0      # prints the DSN, then the admin URL

* control.py -- the operations (rules, faults, scenario state, walsender changes, the journal,
  verify, reset, connections), JSON in and out, each one a call of FakePostgres's own Python
  API: one implementation for Python and for HTTP.
* http.py -- the loopback HTTP server (standard library only) routing requests to control.py.
* jsonspec.py -- JSON rules, answers, tables read by the scenario parser (errors name the field).
* values.py -- Python values <-> JSON ({"$decimal": "9.99"}, {"$bytes": "<base64>"}, ...).
* callbacks.py -- rules answered by the client of the API (Python handlers of a child process).
* client.py -- a small Python client of the API (what `FakePostgres(subprocess=True)` speaks).
* openapi.json -- the OpenAPI 3.1 document of every endpoint (GET /__admin/openapi.json).

This package's __init__ imports nothing: fakepm.child (the test process's side) imports
client.py without pulling in the server.
"""
