"""The comparison for `make bench`: issue-credentials as a Python Lambda with boto3.

It makes the same AWS calls as cooper for the same request, in the way a Python handler would:
clients and the broker keys (one SSM GetParameters) at init; then per request the API token, the
target, the user's partition and the request count, the grants of the user and their groups,
AssumeRole with the broker keys, and the audit record. It is hosted by a minimal Lambda runtime
loop over the runtime API (as the AWS Python runtime's own loop does), so that its cold start is
measured the same way as cooper's: process start to first response.

Not a product: it trusts its input, and is only here to be timed.
"""

import datetime
import hashlib
import hmac
import json
import os
import time
import urllib.request
import uuid

import boto3

DIRECTORY = os.environ.get("COOPER_DIRECTORY_TABLE", "cooper-directory")
AUDIT = os.environ.get("COOPER_AUDIT_TABLE", "cooper-audit")
PREFIX = os.environ.get("COOPER_SSM_PREFIX", "/cooper")
LIMIT = int(os.environ.get("COOPER_CREDENTIAL_RATE_LIMIT", "60"))

ssm = boto3.client("ssm")
dynamodb = boto3.client("dynamodb")
_keys = {
    p["Name"]: p["Value"]
    for p in ssm.get_parameters(
        Names=[f"{PREFIX}/broker/access-key-id", f"{PREFIX}/broker/secret-access-key"],
        WithDecryption=True,
    )["Parameters"]
}
sts = boto3.client(
    "sts",
    aws_access_key_id=_keys[f"{PREFIX}/broker/access-key-id"],
    aws_secret_access_key=_keys[f"{PREFIX}/broker/secret-access-key"],
)


def answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handler(event, context):
    bearer = (event.get("headers") or {}).get("authorization", "")
    parts = bearer.removeprefix("Bearer ").split("_")
    if len(parts) != 3:
        return answer(401, {"code": "unauthenticated"})
    _, token_id, secret = parts
    token = dynamodb.get_item(
        TableName=DIRECTORY, Key={"PK": {"S": f"TOKEN#{token_id}"}, "SK": {"S": "TOKEN"}}, ConsistentRead=True
    ).get("Item")
    digest = hashlib.sha256(secret.encode()).hexdigest()
    if not token or not hmac.compare_digest(token["hash"]["S"], digest) or token["revoked"]["BOOL"]:
        return answer(401, {"code": "unauthenticated"})
    user = token["user"]["S"]
    request = json.loads(event.get("body") or "{}")
    name = request["target"]

    now = time.time()
    window = int(now // 60) * 60
    dynamodb.update_item(
        TableName=DIRECTORY,
        Key={"PK": {"S": f"RATE#credentials#{user}"}, "SK": {"S": f"WINDOW#{window}"}},
        UpdateExpression="ADD #n :one SET #ttl = :ttl",
        ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
        ExpressionAttributeNames={"#n": "requests", "#ttl": "ttl"},
        ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(LIMIT)}, ":ttl": {"N": str(window + 360)}},
    )
    target = dynamodb.get_item(
        TableName=DIRECTORY, Key={"PK": {"S": f"TARGET#{name}"}, "SK": {"S": "TARGET"}}, ConsistentRead=True
    ).get("Item")
    partition = dynamodb.query(
        TableName=DIRECTORY,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USER#{user}"}},
        ConsistentRead=True,
    )["Items"]
    if not target:
        return answer(403, {"code": "not_granted"})
    account = target["account"]["S"]
    level = int(target["level"]["N"])
    groups = [i["group"]["S"] for i in partition if i["SK"]["S"].startswith("MEMBER#")]
    grants = [i for i in partition if i["SK"]["S"].startswith("GRANT#")]
    keys = [
        {"PK": {"S": f"GROUP#{g}"}, "SK": {"S": sk}}
        for g in groups
        for sk in (f"GRANT#TARGET#{name}", f"GRANT#ACCOUNT#{account}")
    ]
    if keys:
        found = dynamodb.batch_get_item(RequestItems={DIRECTORY: {"Keys": keys, "ConsistentRead": True}})
        grants += found["Responses"].get(DIRECTORY, [])
    allowed = [
        g for g in grants
        if g["SK"]["S"] == f"GRANT#TARGET#{name}"
        or (g["SK"]["S"] == f"GRANT#ACCOUNT#{account}" and int(g["max_level"]["N"]) >= level)
    ]
    if not allowed:
        return answer(403, {"code": "not_granted"})

    duration = int(request.get("duration_seconds") or min(3600, int(target["max_duration_seconds"]["N"])))
    out = sts.assume_role(
        RoleArn=target["role_arn"]["S"],
        RoleSessionName=user,
        DurationSeconds=duration,
        ExternalId=target["external_id"]["S"],
        SourceIdentity=user,
    )
    credentials = out["Credentials"]
    request_id = str(uuid.uuid4())
    at = datetime.datetime.now(datetime.timezone.utc)
    dynamodb.put_item(
        TableName=AUDIT,
        Item={
            "id": {"S": request_id},
            "event": {"S": "credentials.issued"},
            "actor": {"S": user},
            "target": {"S": name},
            "account": {"S": account},
            "at": {"S": at.isoformat()},
            "at_ms": {"N": str(int(at.timestamp() * 1000))},
            "access_key_id": {"S": credentials["AccessKeyId"]},
            "principal_arn": {"S": out["AssumedRoleUser"]["Arn"]},
            "expiration": {"S": credentials["Expiration"].isoformat()},
            "source_ip": {"S": event["requestContext"]["http"]["sourceIp"]},
            "auth": {"S": f"api_token:{token_id}"},
            "duration_seconds": {"N": str(duration)},
        },
        ConditionExpression="attribute_not_exists(id)",
    )
    return answer(200, {
        "access_key_id": credentials["AccessKeyId"],
        "secret_access_key": credentials["SecretAccessKey"],
        "session_token": credentials["SessionToken"],
        "expiration": credentials["Expiration"].isoformat(),
        "target": name,
        "request_id": request_id,
    })


def main():
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation"
    while True:
        with urllib.request.urlopen(api + "/next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(r.read())
        result = handler(event, None)
        urllib.request.urlopen(urllib.request.Request(
            f"{api}/{request_id}/response", data=json.dumps(result).encode(), method="POST"
        )).read()


if __name__ == "__main__":
    main()
