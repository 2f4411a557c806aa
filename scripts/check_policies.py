"""Holds template.yaml's function policies to infra/function-policies.json (part of `make lint`).

For each function: the DynamoDB actions on the directory table (reads, and writes granted only
under dynamodb:LeadingKeys conditions naming exactly the listed key prefixes), the actions on
the audit table, the KMS purposes it may decrypt and encrypt (by the cooper:purpose encryption
context), and the SSM parameters it may read and write. Anything more, or less, fails.
"""

import json
import sys
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem", "BatchWriteItem"}


def as_list(value):
    return value if isinstance(value, list) else [value]


def refers_to(resource, logical_id):
    """Whether a policy Resource names `logical_id` (its Arn, or a sub-path like an index)."""
    text = json.dumps(resource)
    return f'"{logical_id}.Arn"' in text or f"${{{logical_id}.Arn}}" in text or (
        f'"{logical_id}", "Arn"' in text
    )


def statements(function):
    for policy in function["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            yield from policy["Statement"]


def check(name, function, want):
    problems = []
    read, write, prefixes, audit = set(), set(), set(), set()
    unconditioned_writes = set()
    decrypt, encrypt, ssm, ssm_write = set(), set(), None, None
    for st in statements(function):
        actions = {a.split(":", 1)[1] for a in as_list(st["Action"]) if a.startswith("dynamodb:")}
        resources = as_list(st["Resource"])
        condition = st.get("Condition", {})
        if any(refers_to(r, "DirectoryTable") for r in resources):
            leading = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
            for action in actions:
                if action in WRITES:
                    write.add(action)
                    if leading is None:
                        unconditioned_writes.add(action)
                else:
                    read.add(action)
            if leading is not None and actions & WRITES:
                prefixes |= {p.rstrip("*") for p in as_list(leading)}
        if any(refers_to(r, "AuditTable") for r in resources):
            audit |= actions
        kms = {a for a in as_list(st["Action"]) if a.startswith("kms:")}
        purposes = condition.get("StringEquals", {}).get("kms:EncryptionContext:cooper:purpose")
        if kms and purposes is not None:
            if "kms:Decrypt" in kms:
                decrypt |= set(as_list(purposes))
            if "kms:Encrypt" in kms:
                encrypt |= set(as_list(purposes))
        elif kms and "kms:ViaService" not in json.dumps(condition):
            problems.append(f"KMS granted without a purpose or a via-service condition: {st.get('Sid')}")
        paths = [json.dumps(r).split("parameter${SsmPrefix}")[-1].split('"')[0] for r in resources]
        paths = paths[0] if len(paths) == 1 else set(paths)
        if "ssm:GetParameters" in as_list(st["Action"]):
            ssm = paths
        if "ssm:PutParameter" in as_list(st["Action"]):
            ssm_write = paths
    expect = lambda what, got, wanted: problems.append(  # noqa: E731
        f"{what}: template has {sorted(got) if isinstance(got, set) else got}, "
        f"the table {sorted(wanted) if isinstance(wanted, (set, list)) else wanted}"
    ) if got != (set(wanted) if isinstance(wanted, list) else wanted) else None
    expect("directory reads", read, want["directory_read"])
    expect("directory writes", write, want["directory_write"])
    expect("directory write key prefixes", prefixes, want["directory_write_prefixes"])
    expect("audit table actions", audit, want["audit"])
    expect("KMS decrypt purposes", decrypt, want["kms_decrypt_purposes"])
    expect("KMS encrypt purposes", encrypt, want["kms_encrypt_purposes"])
    expect("SSM parameters", ssm, want["ssm_parameters"])
    expect("SSM parameters written", ssm_write, want.get("ssm_write_parameters"))
    if unconditioned_writes:
        problems.append(f"directory writes without dynamodb:LeadingKeys: {sorted(unconditioned_writes)}")
    return [f"{name}: {p}" for p in problems]


def main():
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    table = json.loads((ROOT / "infra/function-policies.json").read_text())
    functions = {
        r["Metadata"]["BuildProperties"]["Binary"]: r
        for r in template["Resources"].values()
        if r.get("Type") == "AWS::Serverless::Function"
    }
    problems = []
    wanted = {k: v for k, v in table.items() if not k.startswith("//")}
    if set(functions) != set(wanted):
        problems.append(f"functions: template has {sorted(functions)}, the table {sorted(wanted)}")
    for name, want in wanted.items():
        if name in functions:
            problems += check(name, functions[name], want)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"function policies match infra/function-policies.json ({len(functions)} functions)")


if __name__ == "__main__":
    main()
