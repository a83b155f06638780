# lunferry build, test and lab targets. Every target here also runs in CI.
GO      ?= go
export CGO_ENABLED := 0

.PHONY: e2e-bin e2e-deb all build fmt-check vet unit test test-vm deps lab lab-check vmexec demo demo-online bench clean man deb package-check vagrant-validate

# The VM lab (integration/vm). VM_PKGS are the packages whose tests run inside
# the lab VM through the go test -exec wrapper bin/vmexec; override with
# `make test-vm VM_PKGS=./dm/`.
VMEXEC     := $(CURDIR)/bin/vmexec
VM_PKGS    ?= ./dm/... ./lio/... ./initiator/... ./clone/... ./plan/... ./integration/...
# Per test binary; Go's default 10m is too short for the end-to-end package
# under emulation (vmexec gives the VM this plus 5m).
VM_TEST_TIMEOUT ?= 30m
# The end-to-end tests run these binaries, built once on the host (fast)
# instead of in each guest; lunferry-crash has the crash points of
# internal/crashpoint (the product build has none).
E2E_BIN    := $(CURDIR)/bin/e2e
# TestPackageInstall (integration/e2e) installs the packages of one
# `make deb` build from here.
E2E_DEB    := $(CURDIR)/bin/e2e-deb

all: build

build:
	$(GO) build -trimpath -o bin/lunferry ./cmd/lunferry

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' ; git ls-files -o --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags crashpoints ./internal/crashpoint/

test: fmt-check vet unit vagrant-validate test-vm

# deps: idempotent lab set-up (apt packages; lunferry-dm-clone-dkms installed,
# DKMS building dm-clone for the lab kernel);
# a no-op that needs no root once everything is there.
deps:
	scripts/deps.sh

e2e-bin:
	$(GO) build -trimpath -o $(E2E_BIN)/ ./cmd/lunferry ./integration/lab/cmd/lunferry-lab
	$(GO) build -trimpath -tags crashpoints -o $(E2E_BIN)/lunferry-crash ./cmd/lunferry

e2e-deb:
	rm -rf $(E2E_DEB)
	GO=$(GO) scripts/packaging/build-deb.sh $(E2E_DEB)

vmexec:
	$(GO) build -trimpath -o $(VMEXEC) ./integration/vm/cmd/vmexec

# lab: deps + the initramfs (rebuilt when its inputs change).
lab: deps vmexec
	$(VMEXEC) -prepare

# lab-check: boot the lab once and print what it runs on.
lab-check: lab
	$(VMEXEC) -- sh -c 'uname -r; dmsetup targets | grep -w clone'

# test-vm: pass 1 runs each package's test binary inside the lab VM
# (LUNFERRY_IN_VM=1: vmtest.Require tests run); pass 2 runs on the host with
# LUNFERRY_LAB=1 for the tests that boot the lab themselves (multi-boot
# scenarios, vmtest.RequireLab). Fails if no test binary ran in the VM.
test-vm: lab e2e-bin e2e-deb
	@summary=$$(mktemp "$${TMPDIR:-/tmp}/lunferry-vm-summary.XXXXXX"); start=$$(date +%s); \
	echo "== test-vm pass 1: in the lab VM: $(VM_PKGS)"; \
	LUNFERRY_LAB=1 LUNFERRY_E2E_BIN=$(E2E_BIN) LUNFERRY_E2E_DEB=$(E2E_DEB) LUNFERRY_VM_SUMMARY=$$summary $(GO) test -p 1 -count=1 -timeout $(VM_TEST_TIMEOUT) -exec $(VMEXEC) $(VM_PKGS); rc=$$?; \
	echo "== test-vm pass 2: host-side lab tests (LUNFERRY_LAB=1): $(VM_PKGS)"; \
	LUNFERRY_LAB=1 LUNFERRY_E2E_BIN=$(E2E_BIN) LUNFERRY_VM_SUMMARY=$$summary $(GO) test -p 1 -count=1 -timeout $(VM_TEST_TIMEOUT) $(VM_PKGS) || rc=1; \
	echo "== lab runs (one line per test binary run in the VM):"; cat $$summary; \
	if ! grep -q 'dm-clone loaded' $$summary; then echo "test-vm: FAIL: no test binary ran in the lab VM"; rc=1; fi; \
	if grep -q 'LAB FAILURE' $$summary; then echo "test-vm: FAIL: the lab VM failed (see above)"; rc=1; fi; \
	rm -f $$summary; echo "== test-vm: $$(( $$(date +%s) - start ))s, exit $$rc"; exit $$rc

# demo: boot the lab and migrate a live ext4 volume with the lunferry CLI
# (scripts/demo.sh, integration/demo/); ends with a verdict line.
demo: lab
	scripts/demo.sh

# demo-online: the same lab, a multipath host migrated online with its
# writer running (scripts/demo.sh online); the verdict states the host's
# longest write stall and its write errors.
demo-online: lab
	scripts/demo.sh online

# man: the man pages, generated from the command tree (lunferry man).
man: build
	bin/lunferry man out/man

# deb: out/lunferry_<version>_amd64.deb and out/lunferry-dm-clone-dkms_<version>_all.deb
# (scripts/packaging/README.md); package-check verifies the unit, runs
# lintian and builds dm-clone through DKMS in a private tree.
deb:
	GO=$(GO) scripts/packaging/build-deb.sh out

package-check: deb
	scripts/packaging/check.sh out

# vagrant-validate: the Vagrantfile's SAN machines, checked (never booted).
vagrant-validate:
	scripts/vagrant/validate.sh

# bench: the lab bench (integration/bench: one boot of the lab, lunferry
# measured against the limits as ratios; out/bench/results.json, results.md
# and PNG plots; BENCH_MODE=smoke for a quick one, BENCH_ONLY=era,verify for
# some figure groups only), then every package's Go
# micro-benchmarks into out/bench/micro.txt.
BENCH_MODE ?= full
BENCH_ONLY ?=
bench: lab e2e-bin
	@mkdir -p out/bench
	$(GO) build -trimpath -o bin/lunferry-bench ./integration/bench/cmd/lunferry-bench
	@bin/lunferry-bench -mode $(BENCH_MODE) -only "$(BENCH_ONLY)" -out out/bench -bin $(E2E_BIN); rc=$$?; \
	$(GO) test -run '^$$' -bench . -benchmem ./... >out/bench/micro.txt 2>&1 || rc=1; \
	cat out/bench/micro.txt; exit $$rc
