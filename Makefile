# lunferry build, test and lab targets. Every target here also runs in CI.
GO      ?= go
export CGO_ENABLED := 0

.PHONY: all build fmt-check vet unit test test-vm deps demo bench clean

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

test: fmt-check vet unit test-vm
