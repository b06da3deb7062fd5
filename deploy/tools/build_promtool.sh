#!/usr/bin/env bash
# Build the Prometheus tools the monitoring tests run, from pinned Go modules,
# into the Yuqing tool cache, and print the binary's path.
#
#   deploy/tools/build_promtool.sh            promtool: checks Prometheus configs and rules,
#                                             runs rule unit tests
#   deploy/tools/build_promtool.sh amtool     amtool: checks alertmanager.yml, tests its routes
#   PROMTOOL_FORCE=1 deploy/tools/build_promtool.sh [amtool]   rebuild
#
# Needs Go >= 1.26.7 (the Prometheus module's go directive; an older Go fetches
# that toolchain itself) and the Go module proxy. Idempotent: a binary built
# for the pinned version is reused.
#
# promtool is built with the remove_all_sd tag, which leaves out the cloud
# service discoveries (AWS, Azure, GCE, ...) and three quarters of the build
# time. It still checks configs that use static, file, HTTP and Kubernetes
# discovery, which is all Yuqing uses.
set -euo pipefail

TOOL="${1:-promtool}"
case "$TOOL" in
  promtool)
    # Prometheus Go module tags v0.3XX.Y are the Prometheus 3.XX.Y releases.
    MODULE_VERSION="v0.316.0"
    RELEASE="3.${MODULE_VERSION#v0.3}"
    PACKAGE="github.com/prometheus/prometheus/cmd/promtool"
    TAGS="remove_all_sd"
    ;;
  amtool)
    MODULE_VERSION="v0.35.0"
    RELEASE="${MODULE_VERSION#v}"
    PACKAGE="github.com/prometheus/alertmanager/cmd/amtool"
    TAGS=""
    ;;
  *)
    echo "usage: $0 [promtool|amtool]" >&2
    exit 2
    ;;
esac

TOOLS_DIR="${YUQING_TOOLS_DIR:-${YUQING_HOME:-$HOME/.cache/yuqing}/tools}"
BIN_DIR="$TOOLS_DIR/bin"
BINARY="$BIN_DIR/$TOOL"
STAMP="$BIN_DIR/.$TOOL-$MODULE_VERSION"

if [[ -z "${PROMTOOL_FORCE:-}" && -x "$BINARY" && -f "$STAMP" ]]; then
  echo "$BINARY"
  exit 0
fi

command -v go >/dev/null || { echo "build_promtool: Go is not on PATH (need Go >= 1.26.7)" >&2; exit 1; }
mkdir -p "$BIN_DIR"

# One package at a time: a few packages need gigabytes to compile.
export GOFLAGS="${GOFLAGS:--p=1}" CGO_ENABLED=0
started=$(date +%s)
echo "build_promtool: building $TOOL $RELEASE (a few minutes the first time)" >&2
GOBIN="$BIN_DIR" go install -trimpath -tags "$TAGS" \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$RELEASE" \
  "$PACKAGE@$MODULE_VERSION"
rm -f "$BIN_DIR/.$TOOL"-* && touch "$STAMP"
echo "build_promtool: built $TOOL in $(( $(date +%s) - started ))s" >&2
echo "$BINARY"
