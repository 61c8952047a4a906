"""Schemathesis hooks for `scripts/schemathesis.sh`: two contract rules that JSON Schema cannot
state, applied to generated requests the way a client that honours the contract would.

Nothing here changes what is checked or hides a response; both hooks only replace one valid
value with another valid value (schemathesis revalidates a case a hook touched).
"""

import re
import uuid

import schemathesis
from schemathesis.core.parameters import ParameterLocation

# The `IdempotencyKey` parameter of openapi.json.
KEY = re.compile(r"[!-~]([\t -~]*[!-~])?")
MAX_KEY = 255


def _fresh_key(key: str) -> str:
    """A key no earlier request used, as long as `key` when it can be (keeps length boundaries)."""
    unique = uuid.uuid4().hex
    return key[: -len(unique)] + unique if len(key) >= len(unique) else unique


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    # A case whose headers are the negative part (say, `Authorization` left out) is sent as
    # generated: touching its headers would make schemathesis revalidate them as positive and
    # put the credentials back. Any answer to it is a refusal, so a reused key does no harm.
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        return
    # A key names one operation: the same key with another method, path or body is refused
    # (422 `idempotency_key_reused`, shared/API.md), which no schema can express and which a
    # fuzzer reusing a few short keys runs into all the time. A client makes a new key for each
    # new operation, so every valid generated key is made unique; invalid keys (empty, too long,
    # not visible ASCII) are left as they are, for the negative tests.
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if (
            name.lower() == "idempotency-key"
            and isinstance(value, str)
            and len(value) <= MAX_KEY
            and KEY.fullmatch(value)
        ):
            headers[name] = _fresh_key(value)

    # An IP block's `until` must lie in the future (422 `validation` otherwise): a rule about the
    # clock that JSON Schema cannot state. A generated RFC 3339 time is moved into the future by
    # its year alone (8800 + year mod 400 keeps 29 February valid), so its format, offset and
    # fraction still reach the server's parser as generated.
    if case.path == "/v1/admin/ip-blocks" and case.method.upper() == "POST":
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("until"), str):
            until = body["until"]
            if re.match(r"^[0-9]{4}-", until) and int(until[:4]) < 8800:
                body["until"] = f"{8800 + int(until[:4]) % 400:04d}{until[4:]}"
