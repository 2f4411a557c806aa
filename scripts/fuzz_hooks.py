"""Schemathesis hooks for scripts/fuzz.sh.

The fuzzer runs as the first admin. Left alone it would, sooner or later, disable or delete that
admin or revoke its API token, and every later request would be a 401: a run that proves nothing.
These hooks steer such calls onto a name and token id that are not the fuzzer's own; every other
request goes out exactly as generated.
"""
import os

import schemathesis

ADMIN = os.environ.get("FUZZ_ADMIN", "admin")
TOKEN_ID = os.environ.get("FUZZ_ADMIN_TOKEN_ID", "")


@schemathesis.hook
def before_call(context, case, kwargs):
    params = case.path_parameters
    if not params:
        return
    path = case.operation.path
    method = case.method.upper()
    if path.startswith("/v1/admin/users/{name}") and params.get("name") == ADMIN and method in ("PUT", "DELETE"):
        params["name"] = "fuzz-guard"
    if path == "/v1/admin/tokens/{id}" and TOKEN_ID and params.get("id") == TOKEN_ID:
        params["id"] = "0000000000000000"
