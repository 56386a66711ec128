"""Translate template.yaml with the SAM translator cfn-lint ships, as
CloudFormation's AWS::Serverless-2016-10-31 transform does after `sam
package` (which replaces each local CodeUri with the S3 URI of the uploaded
package). The tests read its output rather than the template's shorthand:
the transform decides what API Gateway and Lambda really get.
Usage: sam_translate.py <template> <package-id>; prints JSON."""
import json
import os
import sys

from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """certferry names no AWS managed policies; any lookup is an error."""

    def load(self):
        raise AssertionError("the template refers to an AWS managed policy by name")


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(sys.argv[1]) as f:
        template = yaml_parse(f.read())
    for name, res in template["Resources"].items():
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(res["Properties"].get("CodeUri"), str):
            res["Properties"]["CodeUri"] = "s3://certferry-sam-artifacts/" + sys.argv[2] + "/" + name
    try:
        out = transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        print("\n".join(str(c) for c in e.causes), file=sys.stderr)
        sys.exit(1)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
