"""Translate a SAM template into the CloudFormation that AWS deploys.

Used by invokerole_test.go: the AWS::Serverless transform (samtranslator, the
library `sam` and cfn-lint ship) decides what API Gateway really does, so the
test reads its output rather than the template's shorthand.
Usage: python3 sam_translate.py template.yaml > translated.json
"""
import json
import os
import sys

from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no AWS managed policy by name; nothing to look up."""

    def load(self):
        return {}


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(sys.argv[1]) as f:
        tmpl = yaml_parse(f.read())
    # What `sam package` does before the transform: local code goes to S3.
    for r in tmpl.get("Resources", {}).values():
        props = r.get("Properties", {})
        if r.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = "s3://bucket/key"
    try:
        out = transform(tmpl, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        print("\n".join(str(c) for c in e.causes), file=sys.stderr)
        sys.exit(1)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
