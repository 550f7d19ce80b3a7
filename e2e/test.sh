#!/usr/bin/env bash
# Runs gander's whole test suite: unit tests, fuzz seeds, and the end-to-end
# tests against the real Python programs, which it installs into a venv.
# The tests run inside a loopback-only network namespace, so no test can
# dial anything but 127.0.0.1 (the Python peers advertise every local
# address as a connection hint).
#
#   ./e2e/test.sh                 everything
#   ./e2e/test.sh -run Dilation   extra arguments are flags for `go test`
#
# Environment: GANDER_E2E_VENV (default ~/.cache/gander/e2e-venv) is where
# the venv lives; it is rebuilt whenever e2e/requirements.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - started)); }
die() {
	printf 'e2e/test.sh: %s\n' "$*" >&2
	exit 1
}

# Check the namespace first: there is no point in installing anything on a
# machine where the tests cannot be isolated. Root gets a plain network
# namespace; anyone else one inside a user namespace (unshare -r), where
# they are root too. There is deliberately no fallback to the host network.
step "checking for a loopback-only network namespace"
command -v unshare > /dev/null || die "needs unshare (util-linux) to isolate the tests from the network"
command -v ip > /dev/null || die "needs ip (iproute2) to bring up lo in the test namespace"
if [[ $EUID -eq 0 ]]; then
	netns=(unshare --net)
else
	netns=(unshare --net --map-root-user)
fi
if ! err="$("${netns[@]}" ip link set lo up 2>&1)"; then
	die "cannot set up a network namespace with '${netns[*]}' ($err): run as root, or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0)"
fi

venv="${GANDER_E2E_VENV:-$HOME/.cache/gander/e2e-venv}"
want="$(sha256sum e2e/requirements.txt | cut -d' ' -f1)"
have="$(cat "$venv/.requirements-sha256" 2> /dev/null || true)"
if [[ "$have" != "$want" ]] || ! "$venv/bin/python" -c '' 2> /dev/null; then
	step "installing the reference programs into $venv"
	command -v python3 > /dev/null || die "needs python3 (3.10 or newer, with the venv module)"
	python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
		die "needs python3 3.10 or newer (magic-wormhole 0.24 does), found $(python3 --version 2>&1)"
	rm -rf "$venv"
	mkdir -p "$(dirname "$venv")"
	python3 -m venv "$venv" || die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r e2e/requirements.txt ||
		die "pip install -r e2e/requirements.txt failed (output above)"
	# Written last: a venv without it is rebuilt next time.
	echo "$want" > "$venv/.requirements-sha256"
fi

# Debian packages the tests drive: tmux (the TUI tests type into it and
# read its screen), curl (what a person fetches a forwarded page with) and
# sshd (the ssh -L baseline of the forwarding benchmark),
# wormhole-william (the Go wormhole client classic transfers are tried
# with) and tty-share (what shwim runs). Without them those tests are
# skipped, loudly.
missing=()
command -v tmux > /dev/null || missing+=(tmux)
command -v curl > /dev/null || missing+=(curl)
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
command -v wormhole-william > /dev/null || missing+=(wormhole-william)
command -v tty-share > /dev/null || missing+=(tty-share) # what shwim runs
if ((${#missing[@]})); then
	if [[ $EUID -eq 0 ]] && command -v apt-get > /dev/null; then
		step "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null 2>&1 ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null; } ||
			echo "e2e/test.sh: could not install ${missing[*]}; the tests that need them will be skipped" >&2
	else
		echo "e2e/test.sh: ${missing[*]} missing and not root; the tests that need them will be skipped" >&2
	fi
fi

# toxiproxy, the delay line of the WAN benchmark (BenchmarkWAN), built from
# the Go module proxy into a cache directory. Without it that benchmark is
# skipped.
toxiproxy_version=v2.12.0
toxiproxy_dir="${GANDER_TOXIPROXY_DIR:-$HOME/.cache/gander/toxiproxy-$toxiproxy_version}"
if [[ ! -x "$toxiproxy_dir/toxiproxy-server" ]]; then
	step "installing toxiproxy $toxiproxy_version into $toxiproxy_dir"
	if GOBIN="$toxiproxy_dir" GOFLAGS= go install "github.com/Shopify/toxiproxy/v2/cmd/server@$toxiproxy_version"; then
		mv "$toxiproxy_dir/server" "$toxiproxy_dir/toxiproxy-server"
	else
		echo "e2e/test.sh: could not install toxiproxy; BenchmarkWAN will be skipped" >&2
	fi
fi

step "go mod download"
go mod download

step "gofmt, go vet"
unformatted="$(gofmt -l .)"
[[ -z "$unformatted" ]] || die "gofmt would change: $unformatted (run gofmt -w on them)"
go vet ./...

# Everything the tests need from the network is fetched by now: build the
# command and every test binary here, since the namespace has no network.
step "go build"
go build ./...
go test -count=1 -run '^$' ./... > /dev/null

step "go test (loopback-only network namespace)"
# GOPROXY=off: a module missing from the cache is an error, not a download
# attempt that would hang; -mod=readonly: the tests never rewrite go.mod.
export GANDER_E2E_VENV="$venv" GANDER_TOXIPROXY="$toxiproxy_dir/toxiproxy-server" GOPROXY=off GOFLAGS=-mod=readonly
status=0
"${netns[@]}" bash -c 'ip link set lo up && exec go test -count=1 -timeout 30m "$@" ./...' bash "$@" || status=$?
step "done, exit status $status"
exit "$status"
