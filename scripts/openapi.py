#!/usr/bin/env python3
"""Writes docs/openapi.json, the OpenAPI 3.1 description of cooper's whole API.

The JSON document is what ships (served at /v1/openapi.json, compiled into the binary); this
script keeps its hundreds of schemas consistent. Edit here, then `make openapi`. The patterns
mirror the server's validators (crates/core/src/names.rs, the model and the request types), so that the
fuzzer's valid inputs are valid and its invalid ones are refused.

    python3 scripts/openapi.py            rewrite docs/openapi.json
    python3 scripts/openapi.py --check    fail if docs/openapi.json is not what this writes
"""
import copy
import json
import os
import sys

CHECK = "--check" in sys.argv[1:]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "openapi.json")

# ---------------------------------------------------------------- regex building blocks
# char::is_control (Unicode Cc)
CTRL = r"\u0000-\u001F\u007F-\u009F"
# char::is_whitespace (Unicode White_Space) that is not also a control character
WS = r" \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
# all of Unicode White_Space (what str::trim removes)
WS_ALL = r"\t\n\u000B\u000C\r\u0085" + WS
STS = r"A-Za-z0-9_+=,.@-"

USER_RE = rf"^[{STS}]{{2,64}}$"
TARGET_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
GROUP_RE = rf"^[^{CTRL}{WS}#](?:[^{CTRL}#]*[^{CTRL}{WS}#])?$"
ACCOUNT_RE = r"^[0-9]{12}$"
PRINTABLE_RE = rf"^[^{CTRL}]*$"
EXTERNAL_ID_RE = r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$"
ROLE_ARN_RE = rf"^arn:(?:aws|aws-us-gov|aws-cn):iam::[0-9]{{12}}:role/(?:[!-9;-~]*/)?[{STS}]{{1,64}}$"
SEALED_RE = r"^[A-Za-z0-9+/=]{1,8192}$"
TOTP_RE = r"^ *(?:[0-9] *){6}$"
APPROVAL_ID_RE = r"^[0-9a-f]{32}$"
TOKEN_ID_RE = r"^[0-9a-f]{16}$"
ACCESS_KEY_RE = r"^[A-Za-z0-9]{16,128}$"
CURSOR_RE = r"^[A-Za-z0-9_-]+$"
REASON_RE = rf"^[{WS_ALL}]*[^{CTRL}{WS}](?:[^{CTRL}]{{0,498}}[^{CTRL}{WS}])?[{WS_ALL}]*$"
DEST_RE = (
    rf"^https://(?:[^/?#{CTRL}{WS}]+\.)?console\.(?:aws\.amazon\.com|amazonaws-us-gov\.com|amazonaws\.cn)"
    rf"(?:[/?#][^{CTRL}{WS}]*)?$"
)
IF_MATCH_RE = r'^[\t ]*(?:W/)?"*\+?[0-9]+"*[\t ]*$'
ETAG_RE = r'^"[0-9]+"$'

def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}

def nullable(schema):
    s = copy.deepcopy(schema)
    t = s.get("type")
    if isinstance(t, str):
        s["type"] = [t, "null"]
    elif isinstance(t, list):
        if "null" not in t:
            s["type"] = t + ["null"]
    else:
        raise ValueError(schema)
    return s

def string(pattern=None, desc=None, **kw):
    s = {"type": "string"}
    if pattern:
        s["pattern"] = pattern
    s.update(kw)
    if desc:
        s["description"] = desc
    return s

def obj(props, required=(), desc=None, closed=True, **kw):
    s = {"type": "object"}
    if desc:
        s["description"] = desc
    s["properties"] = props
    if required:
        s["required"] = list(required)
    if closed:
        s["additionalProperties"] = False
    s.update(kw)
    return s

DATE_TIME = {"type": "string", "format": "date-time"}
DT_IN_DESC = ("An RFC 3339 date-time with a 4-digit year and an offset (`Z` or `+HH:MM`), "
              "e.g. `2026-12-31T23:59:59Z`.")

def dt_in(desc):
    return {"type": ["string", "null"], "format": "date-time", "description": desc + " " + DT_IN_DESC}

# ---------------------------------------------------------------- value schemas
S = {}

S["UserName"] = string(USER_RE, "A cooper user name: 2 to 64 of `A-Z a-z 0-9 _ + = , . @ -` "
                       "(it doubles as the STS SourceIdentity and RoleSessionName).",
                       minLength=2, maxLength=64, examples=["alice@example.com"])
S["GroupName"] = string(GROUP_RE, "A group name: 1 to 128 characters, no control characters, no `#`, "
                        "not starting or ending with white space.",
                        minLength=1, maxLength=128, examples=["payments-engineers"])
S["TargetName"] = string(TARGET_RE, "A target name: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a "
                         "letter or digit.", minLength=1, maxLength=64, examples=["payments-readonly"])
S["AccountId"] = string(ACCOUNT_RE, "A 12-digit AWS account id.", minLength=12, maxLength=12,
                        examples=["123456789012"])
S["Partition"] = {"type": "string", "enum": ["aws", "aws-us-gov", "aws-cn"],
                  "description": "An AWS partition."}
S["TotpCode"] = string(TOTP_RE, "A 6-digit TOTP code from the authenticator app (spaces are ignored).",
                       examples=["123456"])
S["Level"] = {"type": "integer", "minimum": 0, "maximum": 1000,
              "description": "A target level (0 to 1000); a cascade grant of level N covers the "
                             "account's targets of level N and below."}
S["Principal"] = {
    "description": "Who a grant (or an admin scope, or an approval) is given to: exactly one of "
                   "`{\"user\": NAME}` or `{\"group\": NAME}`.",
    "oneOf": [
        obj({"user": ref("UserName")}, ["user"]),
        obj({"group": ref("GroupName")}, ["group"]),
    ],
}

# ---------------------------------------------------------------- error
S["Error"] = obj({
    "error": obj({
        "code": {"type": "string", "description": "A stable snake_case code (see the Error response)."},
        "message": {"type": "string", "description": "A human sentence."},
        "request_id": {"type": "string", "description": "The request's id (also in X-Request-Id)."},
    }, ["code", "message", "request_id"]),
}, ["error"], desc="The one error body of every refusal and failure.")

# ---------------------------------------------------------------- credentials
S["CredentialsRequest"] = obj({
    "target": ref("TargetName"),
    "duration_seconds": {"type": ["integer", "null"], "minimum": 900, "maximum": 129600,
                         "description": "Session length; by default an hour (or the target's maximum, "
                                        "if lower). Must lie within the target's limits: 900 s to its "
                                        "maximum (at most 43200 s for a role, 129600 s for a federated user)."},
    "totp": {"type": ["string", "null"], "pattern": TOTP_RE,
             "description": "The caller's fresh code, for a high-security target."},
    "approver": {"type": ["string", "null"], "pattern": USER_RE, "minLength": 2, "maxLength": 64,
                 "description": "Inline approval: the approver (with `approver_totp`)."},
    "approver_totp": {"type": ["string", "null"], "pattern": TOTP_RE,
                      "description": "Inline approval: the approver's own fresh code (with `approver`)."},
    "approval_id": {"type": ["string", "null"], "pattern": APPROVAL_ID_RE,
                    "description": "Asynchronous approval: an approved request, used once. Not with "
                                   "`approver`/`approver_totp`."},
    "console": {"type": "boolean", "default": False,
                "description": "Also return a console sign-in link (`console_url`)."},
    "destination": {"type": ["string", "null"], "pattern": DEST_RE, "maxLength": 2048,
                    "description": "Where the console opens: an https URL on the target partition's "
                                   "console (implies `console`)."},
}, ["target"], desc="A request for credentials. Give `approver` with `approver_totp`, or `approval_id`, "
                    "or neither.")

CRED_COMMON = {
    "access_key_id": {"type": "string"},
    "secret_access_key": {"type": "string"},
    "session_token": {"type": "string"},
    "expiration": DATE_TIME,
}
S["Credentials"] = obj({
    **CRED_COMMON,
    "target": ref("TargetName"),
    "account_id": ref("AccountId"),
    "principal_arn": {"type": "string"},
    "duration_seconds": {"type": "integer", "minimum": 0},
    "approved_by": {"type": "string", "description": "The approver, for a target that requires approval."},
    "console_url": {"type": "string", "description": "The console sign-in link, when asked for."},
    "request_id": {"type": "string", "description": "The id the issuance was audited under."},
}, ["access_key_id", "secret_access_key", "session_token", "expiration", "target", "account_id",
    "principal_arn", "duration_seconds", "request_id"],
    desc="Temporary AWS credentials (format `json`, the default).")
S["CredentialProcessOutput"] = obj({
    "Version": {"type": "integer", "const": 1},
    "AccessKeyId": {"type": "string"},
    "SecretAccessKey": {"type": "string"},
    "SessionToken": {"type": "string"},
    "Expiration": DATE_TIME,
}, ["Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"],
    desc="The AWS CLI's `credential_process` output, Version 1 (format `credential_process`).")
S["ConsoleLink"] = obj({
    "console_url": {"type": "string"},
    "expiration": {"type": "string"},
    "target": ref("TargetName"),
    "account_id": ref("AccountId"),
    "approved_by": {"type": "string"},
    "request_id": {"type": "string"},
}, ["console_url", "expiration", "target", "account_id", "request_id"],
    desc="A console sign-in link; as secret as the credentials.")

# ---------------------------------------------------------------- caller
S["MyTarget"] = obj({
    "name": ref("TargetName"),
    "account_id": ref("AccountId"),
    "kind": {"type": "string", "enum": ["role", "federated_user"]},
    "level": {"type": "integer", "minimum": 0, "maximum": 1000},
    "max_duration_seconds": {"type": "integer", "minimum": 0},
    "high_security": {"type": "boolean", "description": "A fresh TOTP code is needed with each request."},
    "requires_approval": {"type": "boolean", "description": "A second person's approval is needed."},
    "approvers": {"type": "array", "items": {"type": "string"},
                  "description": "Who may approve (`user NAME`, `group NAME`); omitted when empty."},
    "role_arn": {"type": "string"},
    "description": {"type": "string"},
    "granted_by": {"type": "array", "items": {"type": "string"},
                   "description": "The grants that let the caller use this target."},
}, ["name", "account_id", "kind", "level", "max_duration_seconds", "high_security",
    "requires_approval", "granted_by"])
S["MyTargets"] = obj({"targets": {"type": "array", "items": ref("MyTarget")}}, ["targets"])
S["AdminScope"] = {
    "description": "The caller's admin scope.",
    "oneOf": [
        obj({"scope": {"type": "string", "const": "universal"}}, ["scope"]),
        obj({"scope": {"type": "string", "const": "accounts"},
             "accounts": {"type": "array", "items": ref("AccountId")}}, ["scope", "accounts"]),
    ],
}
S["WhoAmI"] = obj({
    "user": ref("UserName"),
    "display_name": {"type": "string"},
    "groups": {"type": "array", "items": {"type": "string"}},
    "authenticated_by": {"type": "string", "enum": ["jwt", "api_token", "approver_code", "oidc"]},
    "token_id": {"type": "string", "pattern": TOKEN_ID_RE, "description": "The API token used, if any."},
    "expires_at": DATE_TIME,
    "admin": ref("AdminScope"),
}, ["user", "groups", "authenticated_by"])

# ---------------------------------------------------------------- approvals
S["ApprovalRequest"] = obj({
    "target": ref("TargetName"),
    "reason": string(REASON_RE, "Why: 1 to 500 characters once trimmed, no control characters."),
}, ["target", "reason"])
S["ApproveRequest"] = obj({"totp": ref("TotpCode")}, ["totp"])
S["Approval"] = obj({
    "id": string(APPROVAL_ID_RE),
    "target": ref("TargetName"),
    "requester": ref("UserName"),
    "reason": {"type": "string"},
    "status": {"type": "string", "enum": ["pending", "approved", "used", "expired"]},
    "created_at": DATE_TIME,
    "expires_at": DATE_TIME,
    "approved_by": ref("UserName"),
    "approved_at": DATE_TIME,
}, ["id", "target", "requester", "reason", "status", "created_at", "expires_at"])

# ---------------------------------------------------------------- factors
S["LoginRequest"] = obj({
    "user": ref("UserName"),
    "password": {"type": "string"},
    "totp": ref("TotpCode"),
}, ["user", "password", "totp"])
S["Session"] = obj({
    "token": {"type": "string", "description": "A cooper JWT, for `Authorization: Bearer`."},
    "token_type": {"type": "string", "const": "Bearer"},
    "user": ref("UserName"),
    "expires_at": DATE_TIME,
}, ["token", "token_type", "user", "expires_at"])
S["OidcSessionRequest"] = obj({"id_token": {"type": "string", "description": "The identity provider's ID token."}},
                              ["id_token"])
S["OidcSession"] = obj({
    "token": {"type": "string"},
    "token_type": {"type": "string", "const": "Bearer"},
    "user": ref("UserName"),
    "groups": {"type": "array", "items": {"type": "string"}},
    "expires_at": {"type": "string"},
}, ["token", "token_type", "user", "groups", "expires_at"])
S["EnrollmentStartRequest"] = obj({
    "totp": {"type": ["string", "null"], "pattern": TOTP_RE,
             "description": "A current code: needed when the caller already has an authenticator."},
})
S["EnrollmentStarted"] = obj({
    "user": ref("UserName"),
    "otpauth_uri": {"type": "string"},
    "secret": {"type": "string", "description": "The base32 secret, for typing into an app."},
    "qr_png_base64": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"},
    "expires_at": DATE_TIME,
}, ["user", "otpauth_uri", "secret", "qr_png_base64", "expires_at"])
S["CodeRequest"] = obj({"totp": ref("TotpCode")}, ["totp"])
S["ConfirmEnrollmentRequest"] = obj({
    "totp": ref("TotpCode"),
    "password": {"type": ["string", "null"], "minLength": 12, "maxLength": 256,
                 "description": "A first password, set with the enrollment: 12 to 256 characters, not the user name."},
}, ["totp"])
S["Enrolled"] = obj({"user": ref("UserName"), "enrolled": {"type": "boolean", "const": True}},
                    ["user", "enrolled"])
S["PasswordRequest"] = obj({
    "password": {"type": "string", "minLength": 12, "maxLength": 256,
                 "description": "12 to 256 characters, not the user name."},
    "totp": ref("TotpCode"),
}, ["password", "totp"])

# ---------------------------------------------------------------- admin: common
S["Cursor"] = {"type": ["string", "null"], "description": "Where the next page starts; null on the last page."}
S["Removed"] = obj({
    "deleted": {"type": "string", "description": "What was deleted (`account:ID`, `target:NAME`, ...)."},
    "cascaded": {"type": "array", "items": {"type": "string"}, "description": "What went with it."},
}, ["deleted", "cascaded"])
VERSION = {"type": "integer", "minimum": 0, "description": "The version, as in ETag."}

# accounts
ACCOUNT_PROPS = {"id": ref("AccountId"), "name": {"type": "string"}, "partition": ref("Partition")}
S["Account"] = obj(ACCOUNT_PROPS, ["id", "name", "partition"])
S["VersionedAccount"] = obj({**ACCOUNT_PROPS, "version": VERSION}, ["id", "name", "partition", "version"])
S["AccountPage"] = obj({
    "items": {"type": "array", "items": obj({"version": VERSION, "account": ref("Account")},
                                            ["version", "account"])},
    "cursor": ref("Cursor"),
}, ["items", "cursor"])
ACCOUNT_NAME = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": PRINTABLE_RE,
                "description": "A friendly name: 1 to 64 characters, no control characters."}
PARTITION_IN = {"type": ["string", "null"], "enum": ["aws", "aws-us-gov", "aws-cn", None],
                "description": "The account's partition (default `aws`); it cannot change."}
S["AccountCreate"] = obj({
    "id": ref("AccountId"),
    "name": ACCOUNT_NAME,
    "partition": PARTITION_IN,
}, ["id", "name"])
S["AccountUpdate"] = obj({
    "id": {"type": ["string", "null"], "pattern": ACCOUNT_RE,
           "description": "If given, the account's id (it cannot change)."},
    "name": ACCOUNT_NAME,
    "partition": PARTITION_IN,
}, ["name"])

# targets
TARGET_COMMON = {
    "name": ref("TargetName"),
    "account_id": ref("AccountId"),
    "level": {"type": "integer", "minimum": 0, "maximum": 1000},
    "max_duration_seconds": {"type": "integer", "minimum": 0},
    "high_security": {"type": "boolean"},
    "approvers": {"type": "array", "items": ref("Principal")},
    "description": {"type": ["string", "null"]},
}
ROLE_VIEW = {**TARGET_COMMON, "kind": {"type": "string", "const": "role"},
             "role_arn": {"type": "string"}, "external_id": {"type": ["string", "null"]}}
FED_VIEW = {**TARGET_COMMON, "kind": {"type": "string", "const": "federated_user"},
            "partition": ref("Partition"),
            "session_policy": {"type": ["object", "null"], "description": "The session policy."},
            "federation_keys": {"type": "string", "const": "sealed",
                                "description": "The sealed keys are never returned."}}
ROLE_REQ = ["name", "account_id", "kind", "level", "max_duration_seconds", "high_security", "approvers",
            "description", "role_arn", "external_id"]
FED_REQ = ["name", "account_id", "kind", "level", "max_duration_seconds", "high_security", "approvers",
           "description", "partition", "session_policy", "federation_keys"]
S["RoleTarget"] = obj(ROLE_VIEW, ROLE_REQ, desc="An IAM role target (AssumeRole).")
S["FederatedUserTarget"] = obj(FED_VIEW, FED_REQ, desc="A federated-user target (GetFederationToken).")
S["Target"] = {"oneOf": [ref("RoleTarget"), ref("FederatedUserTarget")]}
S["VersionedRoleTarget"] = obj({**ROLE_VIEW, "version": VERSION}, ROLE_REQ + ["version"])
S["VersionedFederatedUserTarget"] = obj({**FED_VIEW, "version": VERSION}, FED_REQ + ["version"])
S["VersionedTarget"] = {"oneOf": [ref("VersionedRoleTarget"), ref("VersionedFederatedUserTarget")]}
S["TargetPage"] = obj({
    "items": {"type": "array", "items": obj({"version": VERSION, "target": ref("Target")},
                                            ["version", "target"])},
    "cursor": ref("Cursor"),
}, ["items", "cursor"])

def target_input(create):
    name = (ref("TargetName") if create else
            {"type": ["string", "null"], "pattern": TARGET_RE, "minLength": 1, "maxLength": 64,
             "description": "If given, the target's name (it cannot change)."})
    common = {
        "name": name,
        "account_id": ref("AccountId"),
        "level": {"type": "integer", "minimum": 0, "maximum": 1000},
        "high_security": {"type": "boolean", "default": False,
                          "description": "Each issuance needs the caller's fresh TOTP code."},
        "approvers": {"type": "array", "items": ref("Principal"), "default": [],
                      "description": "Who may approve; not empty: every issuance needs a second "
                                     "person's approval."},
        "description": {"type": ["string", "null"]},
    }
    role = obj({
        **common,
        "kind": {"type": "string", "const": "role"},
        "role_arn": {"type": "string", "pattern": ROLE_ARN_RE, "maxLength": 2048,
                     "description": "The role, in the target's account: arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME."},
        "external_id": {"type": ["string", "null"], "pattern": EXTERNAL_ID_RE,
                        "description": "The ExternalId the role's trust policy asks for."},
        "max_duration_seconds": {"type": ["integer", "null"], "minimum": 900, "maximum": 43200,
                                 "description": "Default 3600."},
        "sealed_keys": {"type": ["string", "null"], "description": "Ignored for a role target."},
        "session_policy": {"description": "Ignored for a role target."},
    }, ["account_id", "level", "kind", "role_arn"] + (["name"] if create else []),
        desc="A role target.")
    fed = obj({
        **common,
        "kind": {"type": "string", "const": "federated_user"},
        "sealed_keys": ({"type": "string", "pattern": SEALED_RE} if create else
                        {"type": ["string", "null"], "pattern": SEALED_RE}),
        "session_policy": {
            "description": "The session policy that scopes the federated user: a JSON object with a "
                           "`Statement` (an object or a list), or the same as a JSON string; at most "
                           "2048 characters once minified.",
            "oneOf": [
                obj({"Statement": {"type": ["array", "object"]}}, ["Statement"], closed=False),
                {"type": "string", "minLength": 16},
            ],
        },
        "max_duration_seconds": {"type": ["integer", "null"], "minimum": 900, "maximum": 129600,
                                 "description": "Default 43200."},
        "role_arn": {"type": ["string", "null"], "description": "Ignored for a federated-user target."},
        "external_id": {"type": ["string", "null"], "description": "Ignored for a federated-user target."},
    }, ["account_id", "level", "kind", "session_policy"] + (["name", "sealed_keys"] if create else []),
        desc="A federated-user target. `sealed_keys` is the blob `cooper encrypt` prints"
             + (" (required)." if create else "; left out, the stored keys are kept."))
    return {"oneOf": [role, fed]}

S["TargetCreate"] = target_input(True)
S["TargetUpdate"] = target_input(False)

# users
USER_PROPS = {
    "name": ref("UserName"),
    "enabled": {"type": "boolean"},
    "expires_at": {"type": ["string", "null"], "format": "date-time"},
    "display_name": {"type": ["string", "null"]},
}
USER_REQ = ["name", "enabled", "expires_at", "display_name"]
S["User"] = obj(USER_PROPS, USER_REQ)
S["VersionedUser"] = obj({**USER_PROPS, "version": VERSION}, USER_REQ + ["version"])
S["UserDetails"] = obj({
    **USER_PROPS,
    "groups": {"type": "array", "items": ref("GroupName")},
    "admin": {"type": "array", "items": {"type": "string"},
              "description": "The user's own admin grants: `universal` or an account id."},
    "totp_enrolled": {"type": "boolean"},
    "has_password": {"type": "boolean"},
    "version": VERSION,
}, USER_REQ + ["groups", "admin", "totp_enrolled", "has_password", "version"])
S["UserPage"] = obj({
    "items": {"type": "array", "items": obj({"version": VERSION, "user": ref("User")}, ["version", "user"])},
    "cursor": ref("Cursor"),
}, ["items", "cursor"])

def user_input(create):
    return obj({
        "name": ref("UserName") if create else
        {"type": ["string", "null"], "pattern": USER_RE, "minLength": 2, "maxLength": 64,
         "description": "If given, the user's name (it cannot change)."},
        "enabled": {"type": "boolean", "default": True},
        "expires_at": dt_in("When the user stops being let in; null for never."),
        "display_name": {"type": ["string", "null"], "maxLength": 128, "pattern": PRINTABLE_RE,
                         "description": "At most 128 characters, no control characters."},
    }, ["name"] if create else [])

S["UserCreate"] = user_input(True)
S["UserUpdate"] = user_input(False)

# tokens
TOKEN_PROPS = {
    "id": string(TOKEN_ID_RE),
    "user": ref("UserName"),
    "created_at": DATE_TIME,
    "expires_at": DATE_TIME,
    "revoked": {"type": "boolean"},
    "label": {"type": ["string", "null"]},
}
TOKEN_REQ = ["id", "user", "created_at", "expires_at", "revoked", "label"]
S["ApiToken"] = obj(TOKEN_PROPS, TOKEN_REQ, desc="An API token (never the secret).")
S["IssuedApiToken"] = obj({**TOKEN_PROPS, "token": {"type": "string",
                                                    "description": "The bearer token, shown once: cooper_ID_SECRET."}},
                          TOKEN_REQ + ["token"])
S["ApiTokenList"] = obj({"items": {"type": "array", "items": ref("ApiToken")}}, ["items"])
S["TokenRequest"] = obj({
    "label": {"type": ["string", "null"], "maxLength": 100, "pattern": PRINTABLE_RE,
              "description": "At most 100 characters, no control characters."},
    "days": {"type": ["integer", "null"], "minimum": 1, "maximum": 365, "description": "Lifetime, default 90."},
})
S["EnrollmentCodeRequest"] = obj({
    "hours": {"type": ["integer", "null"], "minimum": 1, "maximum": 336, "description": "Lifetime, default 72."},
})
S["IssuedEnrollmentCode"] = obj({
    "id": string(TOKEN_ID_RE),
    "user": ref("UserName"),
    "code": {"type": "string", "description": "The one-time code, shown once: cooper_enroll_ID_SECRET."},
    "expires_at": DATE_TIME,
}, ["id", "user", "code", "expires_at"])
S["RevokedToken"] = obj({"id": string(TOKEN_ID_RE), "revoked": {"type": "boolean", "const": True}},
                        ["id", "revoked"])

# groups
GROUP_PROPS = {"name": ref("GroupName"), "description": {"type": ["string", "null"]}}
S["Group"] = obj(GROUP_PROPS, ["name", "description"])
S["VersionedGroup"] = obj({**GROUP_PROPS, "version": VERSION}, ["name", "description", "version"])
S["GroupDetails"] = obj({**GROUP_PROPS, "members": {"type": "array", "items": ref("UserName")},
                         "version": VERSION}, ["name", "description", "members", "version"])
S["GroupPage"] = obj({
    "items": {"type": "array", "items": obj({"version": VERSION, "group": ref("Group")}, ["version", "group"])},
    "cursor": ref("Cursor"),
}, ["items", "cursor"])

def group_input(create):
    return obj({
        "name": ref("GroupName") if create else
        {"type": ["string", "null"], "pattern": GROUP_RE, "minLength": 1, "maxLength": 128,
         "description": "If given, the group's name (it cannot change)."},
        "description": {"type": ["string", "null"], "maxLength": 256, "pattern": PRINTABLE_RE,
                        "description": "At most 256 characters, no control characters."},
    }, ["name"] if create else [])

S["GroupCreate"] = group_input(True)
S["GroupUpdate"] = group_input(False)
S["MemberAdded"] = obj({"group": ref("GroupName"), "member": ref("UserName")}, ["group", "member"])
S["MemberRemoved"] = obj({"group": ref("GroupName"), "removed": ref("UserName")}, ["group", "removed"])

# grants
S["Grant"] = {
    "description": "A grant: of one target, or of an account's targets up to a level.",
    "oneOf": [
        obj({"principal": ref("Principal"), "expires_at": {"type": ["string", "null"], "format": "date-time"},
             "target": ref("TargetName")}, ["principal", "expires_at", "target"]),
        obj({"principal": ref("Principal"), "expires_at": {"type": ["string", "null"], "format": "date-time"},
             "account_id": ref("AccountId"), "max_level": {"type": "integer", "minimum": 0, "maximum": 1000}},
            ["principal", "expires_at", "account_id", "max_level"]),
    ],
}
S["GrantPage"] = obj({"items": {"type": "array", "items": ref("Grant")}, "cursor": ref("Cursor")},
                     ["items", "cursor"])
GRANT_EXPIRES = dt_in("When the grant stops covering anything; null for never.")
S["GrantCreate"] = {
    "description": "A grant of a target (`target`), or of an account up to a level (`account_id` and "
                   "`max_level`).",
    "oneOf": [
        obj({"principal": ref("Principal"), "target": ref("TargetName"),
             "account_id": {"type": "null"}, "max_level": {"type": "null"}, "expires_at": GRANT_EXPIRES},
            ["principal", "target"]),
        obj({"principal": ref("Principal"), "target": {"type": "null"},
             "account_id": ref("AccountId"), "max_level": ref("Level"), "expires_at": GRANT_EXPIRES},
            ["principal", "account_id", "max_level"]),
    ],
}
S["GrantDeleted"] = obj({"deleted": {"type": "string"}}, ["deleted"])

# admins
S["AdminGrant"] = {
    "description": "An explicit admin grant: universal (every account) or one account.",
    "oneOf": [
        obj({"principal": ref("Principal"), "account_id": {"type": "null"},
             "scope": {"type": "string", "const": "universal"}}, ["principal", "account_id", "scope"]),
        obj({"principal": ref("Principal"), "account_id": ref("AccountId"),
             "scope": {"type": "string", "const": "account"}}, ["principal", "account_id", "scope"]),
    ],
}
S["AdminGrantList"] = obj({"items": {"type": "array", "items": ref("AdminGrant")}}, ["items"])
S["AdminGrantCreate"] = obj({
    "principal": ref("Principal"),
    "account_id": {"type": ["string", "null"], "pattern": ACCOUNT_RE,
                   "description": "The account administered; absent or null for a universal admin."},
}, ["principal"])
S["AdminGrantDeleted"] = obj({"deleted": ref("AdminGrant")}, ["deleted"])
S["TotpReset"] = obj({"user": ref("UserName"), "totp_enrolled": {"type": "boolean", "const": False}},
                     ["user", "totp_enrolled"])

# audit
S["AuditRecord"] = obj({
    "id": {"type": "string", "description": "The request id."},
    "at": DATE_TIME,
    "event": {"type": "string", "enum": [
        "credentials.issued", "credentials.denied", "console.issued", "approval.requested",
        "approval.approved", "approval.refused", "totp.enrollment_started", "totp.enrolled",
        "totp.enrollment_refused", "session.created", "session.refused", "password.changed",
        "password.refused", "admin.change", "admin.refused"]},
    "actor": {"type": "string"},
    "auth": {"type": "string", "description": "How the actor authenticated (`jwt`, `api_token:ID`, ...)."},
    "source_ip": {"type": "string"},
    "target": {"type": "string"},
    "account": {"type": "string"},
    "access_key_id": {"type": "string"},
    "principal_arn": {"type": "string"},
    "expiration": DATE_TIME,
    "duration_seconds": {"type": "integer", "minimum": 0},
    "reason": {"type": "string"},
    "approved_by": {"type": "string"},
    "approval_id": {"type": "string"},
    "resource": {"type": "string"},
    "action": {"type": "string"},
    "before": {"description": "For admin changes: the state before (secrets redacted)."},
    "after": {"description": "For admin changes: the state after (secrets redacted)."},
}, ["id", "at", "event", "actor", "auth"])
S["AuditPage"] = obj({"items": {"type": "array", "items": ref("AuditRecord")}, "cursor": ref("Cursor")},
                     ["items", "cursor"])

# ---------------------------------------------------------------- parameters, headers, responses
def header(schema, desc, required=True):
    return {"description": desc, "required": required, "schema": schema}

H = {
    "RequestId": header({"type": "string", "minLength": 1}, "The request's id (API Gateway's, or a UUIDv7 locally)."),
    "NoStore": header({"type": "string", "const": "no-store"}, "Credentials and secrets are never cached."),
    "ETag": header({"type": "string", "pattern": ETAG_RE}, "The resource's version, for If-Match."),
}

P = {
    "TotpHeader": {
        "name": "X-Cooper-TOTP", "in": "header", "required": False,
        "description": "The admin's fresh TOTP code, for operations the deployment calls sensitive "
                       "(by default: top-level grants, admin grants, federation keys, deleting an "
                       "account; optionally deleting a user, resetting TOTP, issuing tokens). Read "
                       "(and checked for shape) on every admin operation.",
        "schema": {"type": "string", "pattern": TOTP_RE}, "example": "123456",
    },
    "IfMatchRequired": {
        "name": "If-Match", "in": "header", "required": True,
        "description": "The ETag read (e.g. `\"3\"`); an update of a stale version is refused (409).",
        "schema": {"type": "string", "pattern": IF_MATCH_RE}, "example": "\"1\"",
    },
    "IfMatchOptional": {
        "name": "If-Match", "in": "header", "required": False,
        "description": "The ETag read (e.g. `\"3\"`): delete only that version.",
        "schema": {"type": "string", "pattern": IF_MATCH_RE}, "example": "\"1\"",
    },
    "Limit": {"name": "limit", "in": "query", "required": False, "description": "Page size (default 50).",
              "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
    "Cursor": {"name": "cursor", "in": "query", "required": False,
               "description": "The `cursor` of the previous page.",
               "schema": {"type": "string", "pattern": CURSOR_RE}},
    "Cascade": {"name": "cascade", "in": "query", "required": False,
                "description": "Also remove what depends on it (grants, admin grants, memberships).",
                "schema": {"type": "boolean", "default": False}},
    "AccountPath": {"name": "id", "in": "path", "required": True, "schema": ref("AccountId"),
                    "example": "123456789012"},
    "TargetPath": {"name": "name", "in": "path", "required": True, "schema": ref("TargetName"),
                   "example": "payments-readonly"},
    "UserPath": {"name": "name", "in": "path", "required": True, "schema": ref("UserName"),
                 "example": "alice@example.com"},
    "GroupPath": {"name": "name", "in": "path", "required": True, "schema": ref("GroupName"),
                  "example": "payments-engineers"},
}

ERROR_CODES = """\
Every refusal and failure: the JSON error body, with a stable `code`. The codes:

- 400: `invalid_request`, `malformed_json`, `invalid_target`, `invalid_duration`, `invalid_format`, `invalid_reason`, `immutable_field`
- 401 (with `WWW-Authenticate: Bearer realm="cooper"`): `unauthenticated`, `invalid_authorization`, `invalid_token`, `token_expired`, `token_not_yet_valid`, `token_revoked`, `invalid_credentials`, `unknown_issuer`, `invalid_algorithm`, `unknown_key`, `invalid_signature`, `invalid_audience`, `missing_claim`, `email_not_verified`, `email_domain_not_allowed`, `invalid_user`
- 403: `unknown_user`, `user_disabled`, `user_expired`, `not_granted`, `totp_not_enrolled`, `totp_invalid`, `self_approval`, `not_an_approver`, `approval_mismatch`, `approver_not_enrolled`, `approver_totp_invalid`, `not_an_admin`, `out_of_scope`, `universal_admin_required`, `wider_admin`
- 404: `not_found`, `approval_not_found`, `oidc_not_configured`
- 405: `method_not_allowed`
- 409: `totp_replayed`, `approver_totp_replayed`, `no_pending_enrollment`, `approval_not_required`, `approval_expired`, `approval_pending`, `approval_decided`, `approval_used`, `already_exists`, `version_conflict`, `in_use`, `too_many_dependents`
- 413: `body_too_large` (bodies are limited to 16384 bytes)
- 415: `unsupported_media_type`
- 422: `totp_required`, `approval_required`
- 428: `precondition_required` (send If-Match)
- 429 (with `Retry-After`): `locked_out`, `approver_locked_out`
- 502: `upstream_refused`, `upstream_invalid` (e.g. the console sign-in endpoint failed)
- 503 (with `Retry-After`): `upstream_throttled`, `upstream_unavailable`, `audit_unavailable`, `identity_provider_unavailable`, `unavailable`, `internal`
"""

R = {
    "Error": {
        "description": ERROR_CODES,
        "headers": {
            "X-Request-Id": {"$ref": "#/components/headers/RequestId"},
            "WWW-Authenticate": header({"type": "string"}, "On 401: `Bearer realm=\"cooper\"`.", False),
            "Retry-After": header({"type": "string", "pattern": "^[0-9]+$"},
                                  "On 429 and 503: seconds to wait before retrying.", False),
        },
        "content": {"application/json": {"schema": ref("Error")}},
    },
}

def hdr(name):
    return {"$ref": f"#/components/headers/{name}"}

def pref(name):
    return {"$ref": f"#/components/parameters/{name}"}

def resp(desc, schema=None, headers=None, status_headers=True):
    r = {"description": desc}
    hs = {"X-Request-Id": hdr("RequestId")}
    if headers:
        hs.update(headers)
    r["headers"] = hs
    if schema is not None:
        r["content"] = {"application/json": {"schema": schema}}
    return r

def body(schema, example=None, required=True, desc=None):
    b = {"required": required, "content": {"application/json": {"schema": schema}}}
    if example is not None:
        b["content"]["application/json"]["example"] = example
    if desc:
        b["description"] = desc
    return b

DEFAULT = {"$ref": "#/components/responses/Error"}
ETAG = {"ETag": hdr("ETag")}
NO_STORE = {"Cache-Control": hdr("NoStore")}

paths = {}

def op(method, path, operation_id, summary, tags, responses, description=None, parameters=None,
       request_body=None, security=None):
    o = {"operationId": operation_id, "summary": summary, "tags": tags}
    if description:
        o["description"] = description
    if security is not None:
        o["security"] = security
    if parameters:
        o["parameters"] = parameters
    if request_body:
        o["requestBody"] = request_body
    rs = dict(responses)
    rs["default"] = DEFAULT
    o["responses"] = rs
    paths.setdefault(path, {})[method] = o

def q(name, schema, desc, required=False, example=None):
    p = {"name": name, "in": "query", "required": required, "description": desc, "schema": schema}
    if example is not None:
        p["example"] = example
    return p

ADMIN = [pref("TotpHeader")]

# ---------------------------------------------------------------- issue-credentials
op("post", "/v1/credentials", "issueCredentials", "Temporary AWS credentials for a target", ["credentials"],
   {"200": resp("The credentials (audited before they are returned).",
                {"oneOf": [ref("Credentials"), ref("CredentialProcessOutput")]},
                {**NO_STORE, "Pragma": header({"type": "string", "const": "no-cache"}, "`no-cache`.")})},
   description="Deny by default: the caller needs a grant covering the target; a high-security target "
               "needs `totp`, a target with approvers a second person's approval. "
               "`?format=credential_process` answers in the AWS CLI's Version 1 format.",
   parameters=[q("format", {"type": "string", "enum": ["json", "credential_process"], "default": "json"},
                 "The answer's shape.")],
   request_body=body(ref("CredentialsRequest"), {"target": "payments-readonly", "duration_seconds": 3600}))

op("post", "/v1/console", "createConsoleLink", "An AWS console sign-in link for a target", ["credentials"],
   {"200": resp("The sign-in link.", ref("ConsoleLink"),
                {**NO_STORE, "Referrer-Policy": header({"type": "string", "const": "no-referrer"}, "`no-referrer`.")}),
    "302": resp("With `redirect=true`: a redirect to the sign-in link.", None,
                {"Location": header({"type": "string"}, "The console sign-in link."),
                 **NO_STORE,
                 "Referrer-Policy": header({"type": "string", "const": "no-referrer"}, "`no-referrer`.")})},
   description="The same checks and body as credentials (plus `destination`); the link is as secret "
               "as the credentials.",
   parameters=[q("redirect", {"type": "boolean", "default": False},
                 "Answer `302 Found` to the sign-in link instead of JSON.")],
   request_body=body(ref("CredentialsRequest"), {"target": "payments-readonly"}))

op("get", "/v1/targets", "listMyTargets", "The targets the caller may become", ["targets"],
   {"200": resp("The targets, with the grants that allow each.", ref("MyTargets"))})

op("get", "/v1/whoami", "whoami", "The caller, their groups and how they authenticated", ["identity"],
   {"200": resp("The caller.", ref("WhoAmI"))})

op("post", "/v1/approvals", "openApproval", "Ask a second person to approve access to a target",
   ["approvals"],
   {"201": resp("The request, pending for an hour.", ref("Approval"))},
   description="Only for a target that requires approval, by someone granted it.",
   request_body=body(ref("ApprovalRequest"), {"target": "payments-admin", "reason": "Rotate the payments database password (CHG-1234)"}))

APPROVAL_ID = {"name": "id", "in": "path", "required": True,
               "description": "The approval request's id (32 lowercase hex digits; anything else is a 404).",
               "schema": {"type": "string", "pattern": APPROVAL_ID_RE}, "example": "0123456789abcdef0123456789abcdef"}
op("get", "/v1/approvals/{id}", "getApproval", "An approval request", ["approvals"],
   {"200": resp("The request.", ref("Approval"))},
   description="For its requester and its possible approvers (404 to anyone else).",
   parameters=[APPROVAL_ID])

op("post", "/v1/approvals/{id}/approve", "approveApproval", "Approve a request with one's own fresh code",
   ["approvals"], {"200": resp("The approved request.", ref("Approval"))},
   description="By an approver on the target's list, never the requester.",
   parameters=[APPROVAL_ID], request_body=body(ref("ApproveRequest"), {"totp": "123456"}))

op("get", "/v1/openapi.json", "getOpenApi", "This OpenAPI document", ["meta"],
   {"200": resp("The OpenAPI 3.1 description of the API.", {"type": "object"},
                {"Cache-Control": header({"type": "string", "const": "public, max-age=300"}, "Cacheable for 5 minutes.")})},
   security=[])

# ---------------------------------------------------------------- enroll-totp
op("post", "/v1/sessions", "login", "Local login: user, password and TOTP code give a cooper JWT",
   ["sessions"], {"200": resp("A session token.", ref("Session"), NO_STORE)},
   description="Any malformed or wrong part answers 401 `invalid_credentials`; failures lock out.",
   request_body=body(ref("LoginRequest"), {"user": "alice@example.com", "password": "correct horse battery staple", "totp": "123456"}),
   security=[])

op("post", "/v1/sessions/oidc", "createOidcSession",
   "Exchange an identity provider's ID token for a cooper session", ["sessions"],
   {"200": resp("A session token that keeps the provider's groups.", ref("OidcSession"), NO_STORE)},
   description="404 `oidc_not_configured` when the deployment has no identity provider.",
   request_body=body(ref("OidcSessionRequest"), {"id_token": "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl"}),
   security=[])

op("post", "/v1/totp/enrollment", "startTotpEnrollment", "Start enrolling an authenticator", ["totp"],
   {"200": resp("A new secret, waiting for its first code.", ref("EnrollmentStarted"), NO_STORE)},
   description="Needs a signed-in session, or (for a first authenticator) the one-time enrollment code "
               "an admin issued as the bearer; an API token or an identity provider's token alone cannot enroll "
               "(403 `session_required`). The body is optional for a first enrollment; re-enrolling needs "
               "`{\"totp\": CODE}` (a current code).",
   request_body=body(ref("EnrollmentStartRequest"), {}, required=False))

op("post", "/v1/totp/enrollment/confirm", "confirmTotpEnrollment",
   "Confirm the pending enrollment with the app's first code", ["totp"],
   {"200": resp("Enrolled.", ref("Enrolled"))},
   description="With an enrollment code as the bearer, this uses the code up; `password` sets a first password.",
   request_body=body(ref("ConfirmEnrollmentRequest"), {"totp": "123456"}))

op("put", "/v1/password", "setPassword", "Set or change one's password", ["sessions"],
   {"204": resp("The password is set.")},
   request_body=body(ref("PasswordRequest"), {"password": "correct horse battery staple", "totp": "123456"}))

# ---------------------------------------------------------------- admin: accounts
op("get", "/v1/admin/accounts", "listAccounts", "List accounts (within the caller's scope)", ["admin-accounts"],
   {"200": resp("A page of accounts.", ref("AccountPage"))},
   parameters=ADMIN + [pref("Limit"), pref("Cursor")])
op("post", "/v1/admin/accounts", "createAccount", "Create an account (universal admins)", ["admin-accounts"],
   {"201": resp("The account, at version 1.", ref("VersionedAccount"), ETAG)},
   parameters=ADMIN,
   request_body=body(ref("AccountCreate"), {"id": "123456789012", "name": "Payments (EU)", "partition": "aws"}))
op("get", "/v1/admin/accounts/{id}", "getAccount", "Read an account", ["admin-accounts"],
   {"200": resp("The account.", ref("VersionedAccount"), ETAG)},
   parameters=[pref("AccountPath")] + ADMIN)
op("put", "/v1/admin/accounts/{id}", "updateAccount", "Replace an account (its partition cannot change)",
   ["admin-accounts"], {"200": resp("The account, at its new version.", ref("VersionedAccount"), ETAG)},
   parameters=[pref("AccountPath")] + ADMIN + [pref("IfMatchRequired")],
   request_body=body(ref("AccountUpdate"), {"name": "Payments (EU, production)", "partition": "aws"}))
op("delete", "/v1/admin/accounts/{id}", "deleteAccount", "Delete an account (universal admins; sensitive)",
   ["admin-accounts"], {"200": resp("What was deleted.", ref("Removed"))},
   description="Refused (409 `in_use`) while targets, grants or admin grants depend on it, unless `cascade`.",
   parameters=[pref("AccountPath")] + ADMIN + [pref("IfMatchOptional"), pref("Cascade")])

# ---------------------------------------------------------------- admin: targets
op("get", "/v1/admin/targets", "listTargets", "List an account's targets", ["admin-targets"],
   {"200": resp("A page of targets.", ref("TargetPage"))},
   parameters=ADMIN + [q("account", ref("AccountId"), "The account.", required=True, example="123456789012"),
                       pref("Limit"), pref("Cursor")])
op("post", "/v1/admin/targets", "createTarget", "Create a target", ["admin-targets"],
   {"201": resp("The target, at version 1.", ref("VersionedTarget"), ETAG)},
   description="A federated-user target's keys make it sensitive (X-Cooper-TOTP).",
   parameters=ADMIN,
   request_body=body(ref("TargetCreate"), {
       "name": "payments-readonly", "account_id": "123456789012", "level": 10, "kind": "role",
       "role_arn": "arn:aws:iam::123456789012:role/ReadOnly", "max_duration_seconds": 3600,
       "description": "Read-only access to payments"}))
op("get", "/v1/admin/targets/{name}", "getTarget", "Read a target", ["admin-targets"],
   {"200": resp("The target.", ref("VersionedTarget"), ETAG)},
   parameters=[pref("TargetPath")] + ADMIN)
op("put", "/v1/admin/targets/{name}", "updateTarget", "Replace a target (its account cannot change)",
   ["admin-targets"], {"200": resp("The target, at its new version.", ref("VersionedTarget"), ETAG)},
   parameters=[pref("TargetPath")] + ADMIN + [pref("IfMatchRequired")],
   request_body=body(ref("TargetUpdate"), {
       "account_id": "123456789012", "level": 10, "kind": "role",
       "role_arn": "arn:aws:iam::123456789012:role/ReadOnly", "max_duration_seconds": 7200}))
op("delete", "/v1/admin/targets/{name}", "deleteTarget", "Delete a target", ["admin-targets"],
   {"200": resp("What was deleted.", ref("Removed"))},
   description="Refused (409 `in_use`) while grants name it, unless `cascade`.",
   parameters=[pref("TargetPath")] + ADMIN + [pref("IfMatchOptional"), pref("Cascade")])

# ---------------------------------------------------------------- admin: users
op("get", "/v1/admin/users", "listUsers", "List users", ["admin-users"],
   {"200": resp("A page of users.", ref("UserPage"))},
   parameters=ADMIN + [pref("Limit"), pref("Cursor")])
op("post", "/v1/admin/users", "createUser", "Create a user (universal admins)", ["admin-users"],
   {"201": resp("The user, at version 1.", ref("VersionedUser"), ETAG)},
   parameters=ADMIN,
   request_body=body(ref("UserCreate"), {"name": "alice@example.com", "display_name": "Alice Example", "enabled": True}))
op("get", "/v1/admin/users/{name}", "getUser", "Read a user, with groups, admin grants and factors",
   ["admin-users"], {"200": resp("The user.", ref("UserDetails"), ETAG)},
   parameters=[pref("UserPath")] + ADMIN)
op("put", "/v1/admin/users/{name}", "updateUser", "Replace a user (universal admins)", ["admin-users"],
   {"200": resp("The user, at its new version.", ref("VersionedUser"), ETAG)},
   parameters=[pref("UserPath")] + ADMIN + [pref("IfMatchRequired")],
   request_body=body(ref("UserUpdate"), {"display_name": "Alice Example (Payments)"}))
op("delete", "/v1/admin/users/{name}", "deleteUser", "Delete a user and what they own", ["admin-users"],
   {"200": resp("What was deleted.", ref("Removed"))},
   description="Refused (409 `in_use`) while grants, admin grants or memberships name the user, unless "
               "`cascade`; the user's tokens and factors always go with them.",
   parameters=[pref("UserPath")] + ADMIN + [pref("IfMatchOptional"), pref("Cascade")])
op("post", "/v1/admin/users/{name}/totp/reset", "resetUserTotp", "Remove a user's authenticator",
   ["admin-users"], {"200": resp("The user may enroll again.", ref("TotpReset"))},
   parameters=[pref("UserPath")] + ADMIN)

# ---------------------------------------------------------------- admin: tokens
op("get", "/v1/admin/users/{name}/tokens", "listUserTokens", "List a user's API tokens", ["admin-tokens"],
   {"200": resp("The tokens (never their secrets).", ref("ApiTokenList"))},
   parameters=[pref("UserPath")] + ADMIN)
op("post", "/v1/admin/users/{name}/tokens", "issueUserToken", "Issue an API token for a user",
   ["admin-tokens"], {"201": resp("The token, shown once.", ref("IssuedApiToken"), NO_STORE)},
   parameters=[pref("UserPath")] + ADMIN,
   request_body=body(ref("TokenRequest"), {"label": "CI deploy (payments)", "days": 30}))
op("post", "/v1/admin/users/{name}/enrollment-code", "issueEnrollmentCode",
   "Issue a one-time code that enrolls a user's first authenticator", ["admin-users"],
   {"201": resp("The code, shown once.", ref("IssuedEnrollmentCode"), NO_STORE)},
   description="Universal admins, with a fresh code (`enrollment_code` is sensitive by default); 409 "
               "`already_enrolled` when the user has an authenticator (reset it first). The authenticator "
               "enrolled with it never approves the issuing admin's requests.",
   parameters=[pref("UserPath")] + ADMIN,
   request_body=body(ref("EnrollmentCodeRequest"), {"hours": 72}))
op("delete", "/v1/admin/tokens/{id}", "revokeToken", "Revoke an API token", ["admin-tokens"],
   {"200": resp("Revoked.", ref("RevokedToken"))},
   parameters=[{"name": "id", "in": "path", "required": True, "description": "The token's id (16 lowercase hex digits).",
                "schema": {"type": "string", "pattern": TOKEN_ID_RE}, "example": "0123456789abcdef"}] + ADMIN)

# ---------------------------------------------------------------- admin: groups
op("get", "/v1/admin/groups", "listGroups", "List groups", ["admin-groups"],
   {"200": resp("A page of groups.", ref("GroupPage"))},
   parameters=ADMIN + [pref("Limit"), pref("Cursor")])
op("post", "/v1/admin/groups", "createGroup", "Create a group (universal admins)", ["admin-groups"],
   {"201": resp("The group, at version 1.", ref("VersionedGroup"), ETAG)},
   parameters=ADMIN,
   request_body=body(ref("GroupCreate"), {"name": "payments-engineers", "description": "Engineers of the payments team"}))
op("get", "/v1/admin/groups/{name}", "getGroup", "Read a group and its members", ["admin-groups"],
   {"200": resp("The group.", ref("GroupDetails"), ETAG)},
   parameters=[pref("GroupPath")] + ADMIN)
op("put", "/v1/admin/groups/{name}", "updateGroup", "Replace a group (universal admins)", ["admin-groups"],
   {"200": resp("The group, at its new version.", ref("VersionedGroup"), ETAG)},
   parameters=[pref("GroupPath")] + ADMIN + [pref("IfMatchRequired")],
   request_body=body(ref("GroupUpdate"), {"description": "Engineers of the payments team (EU)"}))
op("delete", "/v1/admin/groups/{name}", "deleteGroup", "Delete a group", ["admin-groups"],
   {"200": resp("What was deleted.", ref("Removed"))},
   description="Refused (409 `in_use`) while grants, admin grants or members depend on it, unless `cascade`.",
   parameters=[pref("GroupPath")] + ADMIN + [pref("IfMatchOptional"), pref("Cascade")])
MEMBER = {"name": "user", "in": "path", "required": True, "schema": ref("UserName"), "example": "alice@example.com"}
op("put", "/v1/admin/groups/{name}/members/{user}", "addGroupMember", "Add a user to a group", ["admin-groups"],
   {"200": resp("Added.", ref("MemberAdded"))},
   parameters=[pref("GroupPath"), MEMBER] + ADMIN)
op("delete", "/v1/admin/groups/{name}/members/{user}", "removeGroupMember", "Remove a user from a group",
   ["admin-groups"], {"200": resp("Removed.", ref("MemberRemoved"))},
   parameters=[pref("GroupPath"), MEMBER] + ADMIN)

# ---------------------------------------------------------------- admin: grants
Q_USER = q("user", ref("UserName"), "The grant's user (not with `group`).", example="alice@example.com")
Q_GROUP = q("group", ref("GroupName"), "The grant's group (not with `user`).")
Q_ACCOUNT = lambda d: q("account", ref("AccountId"), d)
op("get", "/v1/admin/grants", "listGrants", "List grants: of a user or group, or in an account",
   ["admin-grants"], {"200": resp("The grants (one page when listed by account).", ref("GrantPage"))},
   description="Give `user` or `group` (all their grants the caller's scope reaches), or `account` "
               "(a page of the account's grants; `limit` 1 to 200 and `cursor` apply then).",
   parameters=ADMIN + [Q_USER, Q_GROUP, Q_ACCOUNT("The account (not with `user` or `group`)."),
                       q("limit", {"type": "integer", "minimum": 0, "maximum": 65535},
                         "Page size, 1 to 200 (default 50); used when listing by account."),
                       q("cursor", {"type": "string"}, "The `cursor` of the previous page; used when listing by account.")])
op("post", "/v1/admin/grants", "createGrant", "Grant a target, or an account up to a level", ["admin-grants"],
   {"201": resp("The grant.", ref("Grant"))},
   description="A grant at or above the account's top level is sensitive (X-Cooper-TOTP).",
   parameters=ADMIN,
   request_body=body(ref("GrantCreate"), {"principal": {"group": "payments-engineers"}, "account_id": "123456789012", "max_level": 10}))
op("delete", "/v1/admin/grants", "deleteGrant", "Remove a grant", ["admin-grants"],
   {"200": resp("Removed.", ref("GrantDeleted"))},
   description="Name the grant's `user` or `group`, and its `target` or `account`.",
   parameters=ADMIN + [Q_USER, Q_GROUP,
                       q("target", ref("TargetName"), "The grant's target (not with `account`)."),
                       Q_ACCOUNT("The cascade grant's account (not with `target`).")])

# ---------------------------------------------------------------- admin: admins
op("get", "/v1/admin/admins", "listAdmins", "List explicit admin grants", ["admin-admins"],
   {"200": resp("The admin grants.", ref("AdminGrantList"))},
   description="Without `account`, universal admins only.",
   parameters=ADMIN + [Q_ACCOUNT("Only the admin grants of this account.")])
op("post", "/v1/admin/admins", "createAdmin", "Make a user or group an admin (sensitive)", ["admin-admins"],
   {"201": resp("The admin grant.", ref("AdminGrant"))},
   description="Never wider than the caller's own scope.",
   parameters=ADMIN,
   request_body=body(ref("AdminGrantCreate"), {"principal": {"user": "alice@example.com"}, "account_id": "123456789012"}))
op("delete", "/v1/admin/admins", "deleteAdmin", "Remove an admin grant (sensitive)", ["admin-admins"],
   {"200": resp("Removed.", ref("AdminGrantDeleted"))},
   description="Name the grant's `user` or `group`, and its `account` (none for a universal grant).",
   parameters=ADMIN + [Q_USER, Q_GROUP, Q_ACCOUNT("The administered account; absent for a universal grant.")])

# ---------------------------------------------------------------- admin: audit
op("get", "/v1/admin/audit", "searchAudit", "Search the audit trail", ["admin-audit"],
   {"200": resp("A page of audit records, in time order.", ref("AuditPage"))},
   description="By exactly one of `access_key_id` (who holds this key), `user` or `account`.",
   parameters=ADMIN + [
       q("access_key_id", {"type": "string", "pattern": ACCESS_KEY_RE}, "An AWS access key id.",
         example="ASIAEXAMPLEEXAMPLE12"),
       q("user", ref("UserName"), "The actor."),
       Q_ACCOUNT("The account."),
       q("order", {"type": "string", "enum": ["asc", "desc"], "default": "asc"}, "Oldest or newest first."),
       pref("Limit"), pref("Cursor")])

doc = {
    "openapi": "3.1.0",
    "info": {
        "title": "cooper",
        "version": "0.1.0",
        "description": "cooper is a serverless AWS access broker: engineers, scripts and CI ask it for "
                       "short-lived STS credentials for the roles they are granted, after proving who "
                       "they are. Every issuance is decided by grants (deny by default) and audited "
                       "before the credentials are handed over. Errors are JSON "
                       "(`{\"error\": {\"code\", \"message\", \"request_id\"}}`); unknown body fields are "
                       "refused; bodies are limited to 16 KiB.",
    },
    "tags": [
        {"name": "credentials", "description": "Temporary AWS credentials and console links."},
        {"name": "targets", "description": "What the caller may become."},
        {"name": "identity", "description": "Who the caller is."},
        {"name": "approvals", "description": "Second-person approval."},
        {"name": "sessions", "description": "Local login, identity-provider sessions and passwords."},
        {"name": "totp", "description": "Authenticator (TOTP) enrollment."},
        {"name": "meta", "description": "This description."},
        {"name": "admin-accounts", "description": "Administration: AWS accounts."},
        {"name": "admin-targets", "description": "Administration: targets."},
        {"name": "admin-users", "description": "Administration: users."},
        {"name": "admin-tokens", "description": "Administration: API tokens."},
        {"name": "admin-groups", "description": "Administration: groups and memberships."},
        {"name": "admin-grants", "description": "Administration: grants."},
        {"name": "admin-admins", "description": "Administration: admin grants."},
        {"name": "admin-audit", "description": "Administration: the audit trail."},
    ],
    "security": [{"bearer": []}],
    "paths": paths,
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http", "scheme": "bearer",
                "description": "A cooper session JWT (from `POST /v1/sessions` or `/v1/sessions/oidc`), "
                               "an API token (`cooper_<16 hex>_<64 hex>`), or, where an identity "
                               "provider is configured, its ID token.",
            },
        },
        "schemas": S,
        "parameters": P,
        "headers": H,
        "responses": R,
    },
}

text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
if CHECK:
    with open(OUT, encoding="utf-8") as f:
        if f.read() != text:
            sys.exit("docs/openapi.json is not what scripts/openapi.py writes: run `make openapi`")
else:
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    n = sum(len(v) for v in paths.values())
    print(f"wrote docs/openapi.json: {n} operations, {len(paths)} paths", file=sys.stderr)
