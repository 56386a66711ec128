"""Translate template.yaml with the SAM translator cfn-lint ships, as
CloudFormation's AWS::Serverless-2016-10-31 transform does after `sam
package` (which replaces each local CodeUri with the S3 URI of the uploaded
package). Usage: sam_translate.py <template> <package-id>; prints JSON."""
import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """certferry names no AWS managed policies; any lookup is an error."""

    def load(self):
        raise AssertionError("the template refers to an AWS managed policy by name")


with open(sys.argv[1]) as f:
    template = yaml_parse(f.read())
for name, res in template["Resources"].items():
    if res.get("Type") == "AWS::Serverless::Function" and res["Properties"].get("CodeUri") == ".":
        res["Properties"]["CodeUri"] = "s3://certferry-sam-artifacts/" + sys.argv[2] + "/" + name
out = transform(template, {}, NoManagedPolicies())
json.dump(out, sys.stdout, indent=1, sort_keys=True)
