#!/usr/bin/env bash
# First command of the README: install what is missing, build, scan the bundled samples.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo
echo "== scanning the bundled samples (samples/README.md says what each is) =="
set +e
./build/pickleproof scan samples/*.pkl
status=$?
set -e
echo
echo "pickleproof exit status: $status (0 = all safe, 1 = something rejected: the malicious samples)"
[ "$status" -le 1 ]
