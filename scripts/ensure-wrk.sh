#!/usr/bin/env bash
# Installs wrk (the HTTP load tool the benchmarks drive) from Debian when it is missing.
set -euo pipefail
# shellcheck source=scripts/service-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/service-lib.sh"
apt_install wrk wrk
