#!/usr/bin/env bash
# validate.sh: `vagrant validate` on the Vagrantfile (provider settings
# ignored: CI has no VirtualBox or libvirt, and boots no box). Installs
# Debian's vagrant package when missing (root, apt-get).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v vagrant >/dev/null; then
	[[ $(id -u) == 0 ]] && command -v apt-get >/dev/null ||
		{ echo "vagrant-validate: vagrant missing: apt-get install vagrant" >&2; exit 1; }
	echo "vagrant-validate: installing vagrant" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends vagrant >/dev/null
fi
dot=$(mktemp -d "${TMPDIR:-/tmp}/lunferry-vagrant.XXXXXX")
trap 'rm -rf "$dot"' EXIT
# Its machine state goes to a temporary directory, not the work tree; no
# version check over the network.
cd "$repo"
VAGRANT_DOTFILE_PATH=$dot VAGRANT_CHECKPOINT_DISABLE=1 vagrant validate --ignore-provider
