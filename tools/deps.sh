#!/usr/bin/env bash
# Installs the Debian 12 packages pickleproof needs that are not installed yet.
set -euo pipefail
pkgs=(gcc make cmake pkg-config clang libclang-rt-14-dev
      libseccomp-dev libsodium-dev zlib1g-dev libbz2-dev liblzma-dev liblz4-dev minisign
      python3 python3-dev python3-pytest python3-numpy python3-joblib python3-sklearn python3-torch
      git pre-commit python3-yaml man-db python3-jsonschema)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
