#!/usr/bin/env bash
# Installs what certferry's tests and demo need, when it is missing:
# openssl, jq, make, and the real servers the node installer's tests drive (nginx,
# Apache httpd, HAProxy, Postfix) from Debian, moto_server (with its server
# extras) from PyPI. Idempotent: installs only what is missing. Prints what
# it did; fails loudly when it cannot install.
set -euo pipefail

need_apt=()
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
# make: .ci/run and the integration tier's release-build test run it.
command -v make >/dev/null 2>&1 || need_apt+=(make)
have_sbin() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have_sbin nginx || need_apt+=(nginx-light)
have_sbin apache2 || need_apt+=(apache2)
have_sbin haproxy || need_apt+=(haproxy)
have_sbin postfix || need_apt+=(postfix)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "ensure-deps: need root (or sudo) to run: $*" >&2; return 1; fi
}

if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "ensure-deps: installing ${need_apt[*]} with apt-get"
  as_root apt-get update -qq
  # Postfix asks how to configure itself: "No configuration" (the tests run
  # their own instances from temp dirs).
  if printf '%s\n' "${need_apt[@]}" | grep -qx postfix; then
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  fi
  # Keep the packages' maintainer scripts from starting the servers on
  # ports 80/25 (policy-rc.d 101 = action forbidden), unless the machine
  # already has a policy of its own.
  policy_added=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  rc=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null || rc=$?
  if [ -n "$policy_added" ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
  if [ "$rc" != 0 ]; then echo "ensure-deps: apt-get install ${need_apt[*]} failed (exit $rc)" >&2; exit 1; fi
  for bin in nginx apache2 haproxy postfix; do
    have_sbin "$bin" || { echo "ensure-deps: $bin still missing after apt-get install" >&2; exit 1; }
  done
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
