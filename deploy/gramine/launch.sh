#!/bin/sh
# Runs one SecureStreams stage inside an SGX enclave with Gramine:
#
#   deploy/gramine/launch.sh STAGE WORKER SCRIPT [MEM_LIMIT]
#
# NOT EXERCISED ON THE DEVELOPMENT MACHINES (they have no SGX); kept as
# the recipe for real SGX hosts. Needs gramine (>= 1.5, for untrusted_shm),
# an SGX2/FLC CPU with the in-kernel driver (/dev/sgx_enclave), the DCAP
# quoting stack (aesmd / PCCS) and an enclave signing key
# (gramine-sgx-gen-private-key).
#
# The worker on this host creates /dev/shm/sstream-WORKER (the channel
# of src/enclave/ss_enclave_chan.h) and talks to the enclave as with the
# sandbox backend. The key service must then verify an SGX quote
# (MRENCLAVE / MRSIGNER) instead of the sandbox's platform-key report:
# see docs/SECURITY.md, "Running on real SGX".
set -eu

[ $# -ge 3 ] || { echo "usage: $0 STAGE WORKER SCRIPT [MEM_LIMIT]" >&2; exit 2; }
stage=$1 worker=$2 script=$(realpath "$3") mem=${4:-67108864}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${SSTREAM_BIN:-$here/../../bin/sstream}")
work=${SSTREAM_GRAMINE_DIR:-$here/build-$worker}
libdir=$(dirname "$(ldd "$bin" | awk '/libc.so/ {print $3}')")

command -v gramine-sgx >/dev/null || { echo "$0: gramine-sgx not found" >&2; exit 1; }
[ -e /dev/sgx_enclave ] || { echo "$0: no SGX device (/dev/sgx_enclave)" >&2; exit 1; }

mkdir -p "$work"
cd "$work"
gramine-manifest \
    -Dentrypoint="$bin" -Dstage="$stage" -Dworker="$worker" \
    -Dscript="$script" -Dmem_limit="$mem" -Darch_libdir="$libdir" \
    -Dlog_level="${GRAMINE_LOG_LEVEL:-error}" \
    "$here/sstream-enclave.manifest.template" sstream-enclave.manifest
gramine-sgx-sign --manifest sstream-enclave.manifest \
    --output sstream-enclave.manifest.sgx
# MRENCLAVE to put in the key service's manifest for this stage:
gramine-sgx-sigstruct-view --output-format json sstream-enclave.sig \
    | sed -n 's/.*"mr_enclave": *"\([0-9a-f]*\)".*/mrenclave \1/p'
exec gramine-sgx sstream-enclave
