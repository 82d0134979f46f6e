#!/usr/bin/env bash
# Debian's chromium, which the browser tests drive through playwright-core (nothing downloads a
# browser). `ensure` installs it with apt-get when it is missing and prints its path.
set -euo pipefail
# shellcheck source=scripts/service-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/service-lib.sh"

case "${1:-}" in
  ensure)
    apt_install chromium chromium
    command -v chromium
    ;;
  *)
    echo "usage: $0 ensure" >&2
    exit 2
    ;;
esac
