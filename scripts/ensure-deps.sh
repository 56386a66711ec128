#!/usr/bin/env bash
# Installs what certferry's tests and demo need, when it is missing:
# openssl, jq and nginx from Debian, moto_server (with its server extras)
# from PyPI. Prints what it did; fails loudly when it cannot install.
set -euo pipefail

need_apt=()
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "ensure-deps: need root (or sudo) to run: $*" >&2; return 1; fi
}

if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "ensure-deps: installing ${need_apt[*]} with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v moto_server >/dev/null 2>&1; then
  echo "ensure-deps: installing moto[server] with pip"
  python3 -m pip install --quiet 'moto[server]>=5.1' || python3 -m pip install --quiet --break-system-packages 'moto[server]>=5.1'
  hash -r
  command -v moto_server >/dev/null 2>&1 || { echo "ensure-deps: moto_server still not on PATH" >&2; exit 1; }
fi

# botocore (ships with the aws CLI and with moto): the rig checks every AWS
# request against its API models (internal/testkit/awsmodel).
if ! python3 -c 'import botocore' >/dev/null 2>&1; then
  echo "ensure-deps: installing botocore with pip"
  python3 -m pip install --quiet botocore || python3 -m pip install --quiet --break-system-packages botocore
fi

# The SAM translator (ships with cfn-lint): the invoke-role test translates template.yaml.
if ! python3 -c 'import samtranslator' >/dev/null 2>&1; then
  echo "ensure-deps: installing aws-sam-translator with pip"
  python3 -m pip install --quiet aws-sam-translator || python3 -m pip install --quiet --break-system-packages aws-sam-translator
fi
