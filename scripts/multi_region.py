"""The multi-region form of template.yaml (part of `make lint`): the global tables are the
single-region tables (same attributes, keys, indexes, TTL; a stream with the new images the
audit notices read), every replica keeps point-in-time recovery and deletion protection; and
the template lints clean in each form: one region, the home of several, another region.

The forms are the template with its parameters' defaults set so: cfn-lint and `sam validate
--lint` read the defaults, and check every condition's branches either way.
"""

import copy
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".venv-tools" / "bin"


def same_table(name, single, global_):
    problems = []
    s, g = single["Properties"], global_["Properties"]
    for key in ["AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode"]:
        if s.get(key) != g.get(key):
            problems.append(f"{name}: {key} differs between the single-region and the global table")
    if s.get("TimeToLiveSpecification") != g.get("TimeToLiveSpecification"):
        problems.append(f"{name}: TimeToLiveSpecification differs")
    single_stream = (s.get("StreamSpecification") or {}).get("StreamViewType")
    global_stream = (g.get("StreamSpecification") or {}).get("StreamViewType")
    if global_stream != "NEW_AND_OLD_IMAGES":
        problems.append(f"{name}: a global table needs a NEW_AND_OLD_IMAGES stream, has {global_stream}")
    if single_stream not in (None, "NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        problems.append(f"{name}: the single-region stream {single_stream} has no new images")
    for replica in g.get("Replicas", []):
        body = replica
        if isinstance(replica, dict) and "Fn::If" in replica:
            body = replica["Fn::If"][1]
        if (body.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled") is not True:
            problems.append(f"{name}: a replica without point-in-time recovery")
        if body.get("DeletionProtectionEnabled") is not True:
            problems.append(f"{name}: a replica without deletion protection")
    return problems


def with_defaults(text, defaults):
    """The template's text with these parameters' defaults (a form of it)."""
    data = yaml.load(text, Loader=CfnLoader)
    for name, value in defaults.items():
        data["Parameters"][name]["Default"] = value
    return yaml.dump(data, Dumper=CfnDumper, sort_keys=False)


class Tagged:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


class CfnLoader(yaml.SafeLoader):
    pass


def _construct(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tagged("!" + suffix, value)


CfnLoader.add_multi_constructor("!", _construct)


class CfnDumper(yaml.SafeDumper):
    pass


def _represent(dumper, data):
    if isinstance(data.value, list):
        return dumper.represent_sequence(data.tag, data.value)
    if isinstance(data.value, dict):
        return dumper.represent_mapping(data.tag, data.value)
    return dumper.represent_scalar(data.tag, data.value)


CfnDumper.add_representer(Tagged, _represent)


def lint(path):
    problems = []
    run = subprocess.run([str(TOOLS / "cfn-lint"), str(path)], capture_output=True, text=True)
    if run.returncode != 0:
        problems.append(f"cfn-lint {path.name}:\n{run.stdout}{run.stderr}")
    run = subprocess.run(
        [str(TOOLS / "sam"), "validate", "--lint", "--template", str(path)],
        capture_output=True,
        text=True,
        env={"PATH": f"{TOOLS}:/usr/bin:/bin", "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    if run.returncode != 0:
        problems.append(f"sam validate {path.name}:\n{run.stdout}{run.stderr}")
    return problems


def main():
    text = (ROOT / "template.yaml").read_text()
    resources = cfn_yaml.loads(text)["Resources"]
    problems = []
    for single, global_ in [("DirectoryTable", "DirectoryGlobalTable"), ("AuditTable", "AuditGlobalTable")]:
        problems += same_table(single, resources[single], resources[global_])
    forms = {
        "home-of-several": {"ReplicaRegions": "eu-west-1,ap-southeast-2"},
        "another-region": {"HomeRegion": "us-east-1"},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for form, defaults in forms.items():
            path = Path(tmp) / f"template-{form}.yaml"
            path.write_text(with_defaults(text, defaults))
            problems += lint(path)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"the global tables are the single-region tables; {len(forms)} multi-region forms lint clean")


if __name__ == "__main__":
    main()
