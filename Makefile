# mptcpgd. `make demo` and `make test` are the two commands of the README;
# both install what they need (scripts/deps.sh) and must run as root.

GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN     := bin/mptcpgd
STATICCHECK := $(CURDIR)/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
PREFIX  ?= /usr/local
VMTEST  := bin/mptcpgd-vmtest
# Debian's kernel series that `make test-kernels` boots (newest package of each).
KERNELS ?= 6.1 6.12
export PATH := $(dir $(GO)):$(PATH)

.PHONY: all build deps deps-vm lint test test-host test-kernels test-guest vmtest demo bench install uninstall man deb guest-debs clean

all: build

# Static, without cgo: no libc mapped beside the daemon (its resident
# memory), and the binary runs on any Linux.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/mptcpgd

deps:
	@scripts/deps.sh

deps-vm:
	@scripts/deps.sh --vm

$(STATICCHECK):
	GOBIN=$(CURDIR)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags guest ./...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags guest ./...

# Everything: the host suite, then Debian's kernels and the systemd guest in
# qemu. All three run even when one fails; the target fails if any did, and
# ends with a summary of what failed and why (scripts/test.sh).
test: deps lint
	@MAKE="$(MAKE)" scripts/test.sh

# The host suite on this machine's kernel. Kernel tests share the host-wide
# generic-netlink lock: one package at a time.
test-host: deps
	$(GO) test -p 1 -count=1 -timeout 15m ./...

# The manual pages mptcpgd(8) and mptcpgd.toml(5) and the bash completion,
# in bin/man: generated from internal/manual and the reference
# configuration, dated by the last commit.
man:
	$(GO) run ./cmd/mptcpgd-man -configs configs -out bin/man -date $$(git log -1 --format=%cs)

# The Debian package, in bin/ (DEB_OUT): version from git describe
# (deploy/debian/deb-version.sh), or DEB_VERSION=...; checked by lintian
# when it is installed.
DEB_VERSION ?= $(shell deploy/debian/deb-version.sh 2>/dev/null || echo 0~dev)
DEB_OUT ?= bin
deb: build man
	@deb=$$(deploy/debian/build.sh $(DEB_VERSION) bin/man $(DEB_OUT)) && echo "$$deb" && \
	if command -v lintian >/dev/null; then lintian --fail-on error "$$deb"; fi

# Debian's mptcpd 0.12, its plugins and the libraries they need, for the
# systemd guest's test of our package beside it (the guest has no network).
GUEST_DEBS := mptcpd mptcpd-plugins libmptcpd3 libell0
guest-debs:
	@mkdir -p bin/guest-debs
	@cd bin/guest-debs && for p in $(GUEST_DEBS); do \
		ls $${p}_*.deb >/dev/null 2>&1 || apt-get download -qq $$p 2>/dev/null || \
		{ apt-get update -qq && apt-get download -qq $$p; } || exit 1; \
	done

vmtest:
	$(GO) build -o $(VMTEST) ./cmd/mptcpgd-vmtest

# The kernel test packages on Debian's kernels (KERNELS="6.1 6.12"), each
# booted under qemu; kernels and initramfs are cached in /var/cache/mptcpgd-test.
test-kernels: deps deps-vm vmtest
	$(VMTEST) kernels $(if $(VMTEST_SUMMARY),-summary $(VMTEST_SUMMARY)) $(KERNELS)

# The guest tests (//go:build guest) in a Debian 12 guest with systemd as
# PID 1, the unit installed with make install; the image is cached.
test-guest: deps deps-vm build deb guest-debs vmtest
	$(VMTEST) systemd $(if $(VMTEST_SUMMARY),-summary $(VMTEST_SUMMARY))

# A client with two uplinks and a server in network namespaces, both running
# mptcpgd; an MPTCP transfer with a cable pulled and plugged back.
demo: deps build
	MPTCPGD_BIN=$(BIN) $(GO) run ./cmd/mptcpgd-demo

# mptcpgd against mptcpd 0.12, side by side in network namespaces; writes
# docs/benchmarks.md. Debian's mptcpd (and its plugins: addr_adv is one)
# is installed if missing, its unit masked first so that nothing starts in
# the machine's own namespace.
bench: deps build
	@if ! dpkg -s mptcpd mptcpd-plugins >/dev/null 2>&1; then \
		mkdir -p /etc/systemd/system && ln -sf /dev/null /etc/systemd/system/mptcp.service; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y mptcpd mptcpd-plugins; \
	fi
	MPTCPGD_BIN=$(BIN) $(GO) run ./cmd/mptcpgd-bench -out docs/benchmarks.md

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/mptcpgd
	install -d $(DESTDIR)/etc/systemd/system
	sed 's|/usr/local/sbin/mptcpgd|$(PREFIX)/sbin/mptcpgd|g' deploy/systemd/mptcpgd.service > $(DESTDIR)/etc/systemd/system/mptcpgd.service
	chmod 0644 $(DESTDIR)/etc/systemd/system/mptcpgd.service
	install -D -m 0644 deploy/rt_protos.d/mptcpgd.conf $(DESTDIR)/etc/iproute2/rt_protos.d/mptcpgd.conf
	install -D -m 0644 deploy/sysusers.d/mptcpgd.conf $(DESTDIR)/etc/sysusers.d/mptcpgd.conf
	@if [ -e $(DESTDIR)/etc/mptcpgd.toml ]; then \
		echo "keeping the existing /etc/mptcpgd.toml"; \
	else \
		install -D -m 0644 configs/mptcpgd.toml $(DESTDIR)/etc/mptcpgd.toml; \
	fi
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then systemd-sysusers /etc/sysusers.d/mptcpgd.conf; fi
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then systemctl daemon-reload; fi

# The unit make install wrote to /etc/systemd/system hides the Debian
# package's in /lib/systemd/system: say so when removing it.
uninstall:
	@if [ -e $(DESTDIR)/etc/systemd/system/mptcpgd.service ]; then \
		echo "removing /etc/systemd/system/mptcpgd.service: while it was there it hid the unit of the Debian package (/lib/systemd/system/mptcpgd.service)"; \
	fi
	rm -f $(DESTDIR)$(PREFIX)/sbin/mptcpgd $(DESTDIR)/etc/systemd/system/mptcpgd.service $(DESTDIR)/etc/iproute2/rt_protos.d/mptcpgd.conf $(DESTDIR)/etc/sysusers.d/mptcpgd.conf
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then systemctl daemon-reload; fi

clean:
	rm -rf bin out/vmtest
