#!/usr/bin/env bash
# Builds the template a service-managed StackSet deploys (docs/stacksets.md).
#
# StackSets with service-managed permissions do not run macros, the
# AWS::Serverless transform included ("CreateStackSet", Capabilities:
# "StackSets with service-managed permissions don't currently support the
# use of macros in templates"). So the SAM template is processed once, by
# CloudFormation's own transform, into plain CloudFormation; and since a
# Lambda function's code must come from a bucket in the function's own
# region ("CreateFunction", FunctionCode.S3Bucket), the code is copied to
# one bucket per region, named <prefix>-<region>, and every function reads
# it from {"Fn::Sub": "<prefix>-${AWS::Region}"}. The node installer needs
# nothing more: its builds ride in the publisher function's package, and
# each stack publishes them to its own regional InstallerBucket.
#
#   scripts/stackset-template.sh package PREFIX HOME_REGION "REGION ..."
#       sam build; sam package to PREFIX-HOME_REGION; copy the packages to
#       PREFIX-<region> for every REGION; process the packaged template
#       through a CloudFormation change set (created for reading only,
#       then deleted: nothing is deployed); regionalize it; upload it to
#       PREFIX-HOME_REGION as stackset/certferry.json; print its URL.
#   scripts/stackset-template.sh regionalize PREFIX < processed.json > stackset.json
#       only the rewrite (what make test checks).
#
# The buckets must exist (one per region, each readable by the
# organization's accounts: docs/stacksets.md gives the bucket policy).
set -euo pipefail

regionalize() {
  local prefix=$1
  [[ $prefix =~ ^[a-z0-9][a-z0-9.-]{1,40}[a-z0-9]$ ]] || { echo "stackset-template: bucket prefix $prefix: lowercase letters, digits, . and -" >&2; exit 2; }
  jq --arg p "$prefix" '
    if (.Transform // null) != null then error("the template still has a Transform: process it first") else . end
    | if ([.Resources[] | select(.Type | startswith("AWS::Serverless::"))] | length) > 0
      then error("the template still has AWS::Serverless resources: process it first") else . end
    | .Resources |= with_entries(
        if .value.Type == "AWS::Lambda::Function" and (.value.Properties.Code.S3Bucket // null) != null
        then .value.Properties.Code.S3Bucket = {"Fn::Sub": ($p + "-${AWS::Region}")}
        else . end)'
}

package() {
  local prefix=$1 home=$2 regions=$3
  local build=.aws-sam/stackset
  mkdir -p "$build"
  sam build
  sam package --region "$home" --s3-bucket "$prefix-$home" --s3-prefix certferry --output-template-file "$build/packaged.yaml"
  # Every S3 object the packaged template names, copied to each region's bucket.
  local keys
  keys=$(grep -oE "s3://$prefix-$home/[^ \"']+" "$build/packaged.yaml" | sed "s|s3://$prefix-$home/||" | sort -u)
  [ -n "$keys" ] || { echo "stackset-template: no packaged code found in $build/packaged.yaml" >&2; exit 1; }
  for r in $regions; do
    [ "$r" = "$home" ] && continue
    for k in $keys; do
      aws s3 cp --only-show-errors --source-region "$home" --region "$r" "s3://$prefix-$home/$k" "s3://$prefix-$r/$k"
    done
  done
  # CloudFormation's own transform: a change set on a new stack name is
  # created (REVIEW_IN_PROGRESS, nothing deployed), its processed template
  # read ("GetTemplate", TemplateStage Processed), and the stack deleted.
  aws s3 cp --only-show-errors --region "$home" "$build/packaged.yaml" "s3://$prefix-$home/stackset/packaged.yaml"
  local probe="certferry-stackset-render-$(date +%s)"
  aws cloudformation create-change-set --region "$home" --stack-name "$probe" --change-set-name render \
    --change-set-type CREATE --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --template-url "https://$prefix-$home.s3.$home.amazonaws.com/stackset/packaged.yaml" >/dev/null
  trap 'aws cloudformation delete-stack --region "$home" --stack-name "$probe" || true' EXIT
  aws cloudformation wait change-set-create-complete --region "$home" --stack-name "$probe" --change-set-name render
  aws cloudformation get-template --region "$home" --stack-name "$probe" --change-set-name render \
    --template-stage Processed --query TemplateBody --output json >"$build/processed.json"
  regionalize "$prefix" <"$build/processed.json" >"$build/certferry.json"
  aws s3 cp --only-show-errors --region "$home" "$build/certferry.json" "s3://$prefix-$home/stackset/certferry.json"
  echo "https://$prefix-$home.s3.$home.amazonaws.com/stackset/certferry.json"
}

case "${1:-}" in
  regionalize) [ $# -eq 2 ] || { echo "usage: $0 regionalize PREFIX < processed.json" >&2; exit 2; }; regionalize "$2" ;;
  package) [ $# -eq 4 ] || { echo "usage: $0 package PREFIX HOME_REGION \"REGION ...\"" >&2; exit 2; }; package "$2" "$3" "$4" ;;
  *) echo "usage: $0 package PREFIX HOME_REGION \"REGION ...\" | regionalize PREFIX" >&2; exit 2 ;;
esac
