# mlsd — make run | make test | make build | make bench
SHELL := /bin/bash
NODE  ?= node
# Debian packages the integration tests and benchmarks drive (real clients and peers).
# dnsmasq-base: DNS server on loopback (MX records, blacklist zone); sasl2-bin and the
# Cyrus modules: SMTP AUTH on the Postfix that plays the ISP's smarthost; spamd, clamd and
# rspamd: the scanning engines (clamd with a test signature database from test/fixtures);
# systemd (systemd-analyze) and iproute2: the service unit test (test/integration/service-unit.test.ts).
# strace: watches the running daemon's mkdir and fsync calls (durable-folders test).
# samba and smbclient: a throw-away SMB 3 share (smbd) and Samba's client that the SMB backup target drives.
# openssh-*: a throw-away sshd with its sftp-server, the SFTP backup target's real peer.
# chromium (driven by playwright-core) and fonts-noto-cjk: the web admin's browser tests and
# screenshots (without the CJK fonts the Chinese pages show boxes).
# python3-fusepy: the power-cut filesystem (test/powercut/powercut_fs.py) that drops what was not fsynced.
TEST_DEBS := swaks postfix socat openssl libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl \
	dnsmasq-base sasl2-bin libsasl2-modules libsasl2-modules-db \
	spamassassin spamd clamav-daemon rspamd \
	systemd iproute2 strace samba smbclient \
	openssh-server openssh-sftp-server openssh-client \
	chromium fonts-noto-cjk python3-fusepy

.PHONY: run build test test-unit test-integration bench bench-archive bench-restore bench-admin soak-powercut deps test-deps clean

node_modules/.installed: package.json package-lock.json patches/*.patch
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.installed

# A clean build, so no compiled test of a deleted source lingers in dist/.
build: deps
	rm -rf dist
	npx tsc -p tsconfig.json
	npx tsc -p tsconfig.web.json
	@chmod +x dist/src/cli.js

# The daemon on the simulated board: SMTP on 127.0.0.1:2525/2587/2465, config and data under ./var.
run: build
	$(NODE) --max-semi-space-size=2 dist/src/cli.js start --board sim --config-dir var/config --data-dir var/data

# Installs the Debian packages the tests use when they are missing (needs root, as CI has).
test-deps:
	@missing=$$(for p in $(TEST_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make test: missing Debian packages: $$missing (run as root to install them)"; exit 1; fi; \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Node 20's test runner takes no globs: list the compiled test files. Two files run at once:
# each starts daemons and real clients of its own, on loopback addresses no other file uses
# (the file's header names its range), and most of their time is spent waiting on peers, so two
# at a time on two cores takes about 10 minutes instead of 15+. The files whose behaviour is a
# matter of time (an HA handover before the dead-peer timer, connection floods against their
# limits) run afterwards, one at a time, on a machine no other test file loads.
TESTS = $(shell find dist/test/$(1) -name '*.test.js' 2>/dev/null | sort)
TIMED = $(addprefix dist/test/integration/,ha.test.js ha-hardening.test.js archive-ha.test.js smtp-flood.test.js smtp-flood-mail.test.js)

test: build test-deps
	$(NODE) --test --test-concurrency=2 $(call TESTS,unit) $(filter-out $(TIMED),$(call TESTS,integration))
	$(NODE) --test --test-concurrency=1 $(TIMED)

test-unit: build
	$(NODE) --test $(call TESTS,unit)

bench: build test-deps
	$(NODE) dist/test/bench/smtp-accept.js
	$(NODE) dist/test/bench/smtp-relay.js
	$(NODE) dist/test/bench/ha.js
	$(NODE) dist/test/bench/scan-engines-startup.js
	$(NODE) dist/test/bench/auth-flood.js
	$(NODE) dist/test/bench/archive/run.js
	$(NODE) dist/test/bench/restore/run.js
	$(NODE) dist/test/bench/admin-page.js

# The archive at a million messages (ingest, disk per message, search p50/p95/p99) and the
# SMTP cost of archiving beside the reference Postfix; long (about an hour at 1M). Its data
# goes under /work/bench-archive-data and is removed at the end. ARCHIVE_BENCH_MESSAGES=20000
# for a quick run; the other knobs are listed at the top of test/bench/archive/run.ts.
bench-archive: build test-deps
	$(NODE) dist/test/bench/archive/run.js

# Restore after a disk swap from the reference Samba, beside a raw smbclient copy (1 GB, 50 users).
bench-restore: build test-deps
	$(NODE) dist/test/bench/restore/run.js

# The web admin's dashboard in Chromium: bytes transferred, requests, time to interactive
# (cold and warm cache, median and p95) and the daemon's RSS, against the targets (300 KB, 1 s).
# BENCH_RUNS=20 loads of each kind.
bench-admin: build test-deps
	$(NODE) dist/test/bench/admin-page.js

# The power-cut tests at length: POWERCUT_CUTS cuts per test (default 100; `make test` runs a
# few), the blank-disk test POWERCUT_BLANK_ROUNDS new boxes (default 30). Each test prints its
# figures (cuts, acknowledged, lost, duplicated) on a line starting "# powercut". About an hour.
POWERCUT_TESTS = $(wildcard $(addprefix dist/test/integration/,powercut-mail.test.js powercut-leveldb.test.js powercut-queue.test.js powercut-stores.test.js powercut-ha.test.js))
soak-powercut: build test-deps
	POWERCUT_CUTS=$${POWERCUT_CUTS:-100} POWERCUT_BLANK_ROUNDS=$${POWERCUT_BLANK_ROUNDS:-30} \
	  bash -o pipefail -c "$(NODE) --test --test-concurrency=1 $(POWERCUT_TESTS) | tee soak-powercut.log | grep -E '^# .*powercut|^# (pass|fail)|^not ok'"

clean:
	rm -rf dist node_modules var
