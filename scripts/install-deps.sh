#!/usr/bin/env bash
# Installs the Debian packages NEF builds with, only those missing (apt-get update only if needed).
set -euo pipefail
pkgs=(cmake ninja-build g++ clang lld libclang-rt-14-dev libgtest-dev libgmock-dev libbenchmark-dev
      nlohmann-json3-dev libcli11-dev libhwy-dev libomp-dev python3-venv python3-dev
      libprotobuf-dev protobuf-compiler libpcre2-dev golang-go
      pocl-opencl-icd ocl-icd-opencl-dev opencl-headers clinfo)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
