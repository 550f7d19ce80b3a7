#!/usr/bin/env bash
# Runs gander's whole test suite: unit tests, fuzz seeds, and the end-to-end
# tests against the real Python programs, which it installs into a venv.
# The tests run inside a loopback-only network namespace, so no test can
# dial anything but 127.0.0.1 (the peers advertise every local address).
#
#   ./e2e/test.sh                 everything
#   ./e2e/test.sh -run Dilation   extra arguments go to `go test`
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

venv="${GANDER_E2E_VENV:-$HOME/.cache/gander/e2e-venv}"
stamp="$(sha256sum e2e/requirements.txt | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements-sha256" 2>/dev/null)" != "$stamp" ]]; then
	step "installing the reference peers into $venv"
	rm -rf "$venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check -r e2e/requirements.txt
	echo "$stamp" > "$venv/.requirements-sha256"
fi

step "go mod download, vet, build"
go mod download
go vet ./...
# Compile every test binary now: inside the namespace there is no network.
go test -count=1 -run '^$' ./... > /dev/null

if ! command -v unshare > /dev/null || ! command -v ip > /dev/null; then
	echo "e2e/test.sh needs unshare (util-linux) and ip (iproute2)" >&2
	exit 1
fi
if ! unshare -n true 2> /dev/null; then
	echo "e2e/test.sh needs to create a network namespace: run as root, or enable unprivileged user namespaces (unshare -rn)" >&2
	exit 1
fi

step "tests (loopback-only network namespace)"
export GANDER_E2E_VENV="$venv" GOFLAGS=-mod=mod GOPROXY=off
exec unshare -n bash -c 'ip link set lo up && exec go test -count=1 -timeout 40m "$@" ./...' bash "$@"
