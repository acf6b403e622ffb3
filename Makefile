# rtr-agent build. `make` builds the agent; `make check` runs every test.
# Knobs: PREFIX, SYSCONFDIR, LOCALSTATEDIR, MANDIR, DESTDIR (install), PKG_CONFIG, CC,
# CFLAGS (appended), WERROR=1, SANITIZER=address|undefined|address,undefined,
# FUZZ_SECONDS, DEBDIR (where `make deb` builds the Debian package).

PREFIX ?= /usr/local
# /etc and /var whatever PREFIX is, not GNU's $(PREFIX)/etc and $(PREFIX)/var:
# the unit's ConfigurationDirectory= and its credentials, and logrotate, read
# /etc; its StateDirectory= and LogsDirectory= are under /var (systemd/README.md).
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
DESTDIR ?=
PKG_CONFIG ?= pkg-config
CC ?= cc
SANITIZER ?=
WERROR ?=
FUZZ_SECONDS ?= 20
SHARED ?= ../shared

BINDIR = $(PREFIX)/bin
DATADIR = $(PREFIX)/share/rtr-agent
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
LOGROTATEDIR ?= $(SYSCONFDIR)/logrotate.d

PKGS = libevent libevent_openssl libevent_pthreads libpcre2-8 json-c libcurl openssl ldap

# Each build flavour has its own folder so sanitizer and plain objects never mix.
ifeq ($(SANITIZER),)
BUILD ?= build
OPT ?= -O2
HARDEN = -D_FORTIFY_SOURCE=2
else
BUILD ?= build/san-$(subst $(comma),-,$(SANITIZER))
OPT ?= -O1
HARDEN =
SANFLAGS = -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
comma := ,

WARN = -Wall -Wextra -Wundef -Wstrict-prototypes -Wformat-security -Wimplicit-fallthrough \
       -Wshadow -Wpointer-arith -Wvla
ifneq ($(WERROR),)
WARN += -Werror
endif

BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(HARDEN) -fstack-protector-strong \
              -MMD -MP -Iparsers -Iagent $(SANFLAGS)
BASE_LDFLAGS = -Wl,-z,relro,-z,now $(SANFLAGS)

DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
DEP_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lpthread

ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS)

PARSERS_SRC := $(sort $(wildcard parsers/*.c))
AGENT_SRC := $(sort $(wildcard agent/*/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))

PARSERS_LIB = $(BUILD)/libparsers.a
AGENT_LIB = $(BUILD)/libagent.a
AGENT_BIN = $(BUILD)/rtr-agent
UNIT_BINS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_REPLAY_BINS = $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%-replay,$(FUZZ_SRC))
BENCH_BINS = $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
BLAST = $(BUILD)/bench/blast

.PHONY: all man FORCE check check-valgrind test-binaries unit bench bench-build bench-peers fuzz fuzz-build install uninstall deb clean deps test-deps run format-check layering-check

all: $(AGENT_BIN)

# What building and running need; test-deps: what the tests need besides.
deps:
	.ci/install-deps

test-deps:
	.ci/install-test-deps

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(if $(filter parsers/%,$<),,$(DEP_CFLAGS)) -c -o $@ $<

# parsers/ is pure: it is compiled without any dependency's flags.
$(PARSERS_LIB): $(patsubst %.c,$(BUILD)/%.o,$(PARSERS_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(AGENT_LIB): $(patsubst %.c,$(BUILD)/%.o,$(AGENT_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(AGENT_BIN): $(BUILD)/agent/main.o $(AGENT_LIB) $(PARSERS_LIB)
	$(CC) $(BASE_LDFLAGS) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

# `rtr-agent version` names the git commit of a build from git: only
# version.o depends on it, through a stamp rewritten when it changes (and
# the Debian package, through its own: see deb).
GIT_COMMIT := $(shell git describe --always --dirty --abbrev=12 2>/dev/null)
COMMIT_STAMP = $(BUILD)/commit.stamp
DEBDIR ?= $(BUILD)/deb
DEB_COMMIT_STAMP = $(DEBDIR)/commit.stamp
$(COMMIT_STAMP) $(DEB_COMMIT_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(GIT_COMMIT)' | cmp -s - $@ || echo '$(GIT_COMMIT)' > $@
$(BUILD)/agent/core/version.o: $(COMMIT_STAMP)
$(BUILD)/agent/core/version.o: ALL_CFLAGS += $(if $(GIT_COMMIT),-DRTR_COMMIT='"$(GIT_COMMIT)"')
FORCE:

# Man pages: rtr-agent.json(5)'s KEYS section is the loader's own key table
# (tests/tools/keyref), put in place of @KEYS@.
KEYREF = $(BUILD)/tools/keyref
MAN_PAGES = $(BUILD)/man/rtr-agent.8 $(BUILD)/man/rtr-agent.json.5
MANDIR ?= $(PREFIX)/share/man

$(KEYREF): $(BUILD)/tests/tools/keyref.o $(AGENT_LIB) $(PARSERS_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

# Sends one email through the HTTPS engine (tests/integration/test_mail.py).
MAIL_SEND = $(BUILD)/tools/mail_send
$(MAIL_SEND): $(BUILD)/tests/tools/mail_send.o $(AGENT_LIB) $(PARSERS_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

$(BUILD)/man/rtr-agent.json.5: systemd/rtr-agent.json.5.in $(KEYREF)
	@mkdir -p $(dir $@)
	$(KEYREF) --man > $@.keys
	sed -e '/^@KEYS@$$/{r $@.keys' -e 'd}' $< > $@.tmp
	rm -f $@.keys && mv -f $@.tmp $@

$(BUILD)/man/rtr-agent.8: systemd/rtr-agent.8
	@mkdir -p $(dir $@)
	cp $< $@

man: $(MAN_PAGES)

# Unit tests of parsers link only the parsers library (a link error catches a parser that
# reaches into agent/ or a dependency); the rest get everything.
PARSER_UNIT_BINS = $(patsubst %,$(BUILD)/tests/test_%,cef event framing json leef message relp syslog)
$(PARSER_UNIT_BINS): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(PARSERS_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $(LDFLAGS) -o $@ $^

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(AGENT_LIB) $(PARSERS_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $(LDFLAGS) -o $@ $< $(AGENT_LIB) $(PARSERS_LIB) $(DEP_LIBS)

$(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(AGENT_LIB) $(PARSERS_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $(LDFLAGS) -o $@ $< $(AGENT_LIB) $(PARSERS_LIB) $(DEP_LIBS)

# The benchmarks' sender links nothing of ours: every contender gets the same one.
$(BLAST): $(BUILD)/tests/bench/blast.o
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $(LDFLAGS) -o $@ $< -lpthread

# Fuzz targets: a replay main() for any compiler; libFuzzer builds with clang.
# A target of a pure agent/ module lists the agent sources it needs in
# FUZZ_AGENT_SRC_<target>; the replay build links them without any dependency's
# library, so a module that stops being pure fails to link.
FUZZ_AGENT_SRC_fuzz_ldapfilter = agent/identity/ldapfilter.c agent/core/userid.c
$(BUILD)/fuzz/fuzz_ldapfilter-replay: $(patsubst %.c,$(BUILD)/%.o,$(FUZZ_AGENT_SRC_fuzz_ldapfilter))
$(BUILD)/fuzz/fuzz_ldapfilter-libfuzzer: $(FUZZ_AGENT_SRC_fuzz_ldapfilter) $(wildcard agent/*/*.h)
FUZZ_AGENT_SRC_fuzz_webhook = agent/ingest/webhook.c agent/core/escape.c
$(BUILD)/fuzz/fuzz_webhook-replay: $(patsubst %.c,$(BUILD)/%.o,$(FUZZ_AGENT_SRC_fuzz_webhook))
$(BUILD)/fuzz/fuzz_webhook-libfuzzer: $(FUZZ_AGENT_SRC_fuzz_webhook) $(wildcard agent/*/*.h)
FUZZ_AGENT_SRC_fuzz_template = agent/decide/template.c agent/core/escape.c
$(BUILD)/fuzz/fuzz_template-replay: $(patsubst %.c,$(BUILD)/%.o,$(FUZZ_AGENT_SRC_fuzz_template))
$(BUILD)/fuzz/fuzz_template-libfuzzer: $(FUZZ_AGENT_SRC_fuzz_template) $(wildcard agent/*/*.h)

$(BUILD)/fuzz/%-replay: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay_main.o $(PARSERS_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_LDFLAGS) $(LDFLAGS) -o $@ $^

# libFuzzer builds compile the parsers (and the target's agent sources) straight in, instrumented.
FUZZ_CC ?= clang
FUZZ_LIBFUZZER_BINS = $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%-libfuzzer,$(FUZZ_SRC))
$(BUILD)/fuzz/%-libfuzzer: tests/fuzz/%.c $(PARSERS_SRC) $(wildcard parsers/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iparsers \
	    -Iagent -o $@ $< $(PARSERS_SRC) $(FUZZ_AGENT_SRC_$*)

unit: $(UNIT_BINS)

# `check` and `run` first install what is missing (a no-op when nothing is),
# then build in a sub-make so pkg-config sees the freshly installed libraries.
# `run` installs no test peer (rsyslog would replace a host's syslog-ng).
check:
	.ci/install-deps
	.ci/install-test-deps
	$(MAKE) test-binaries
	BUILD=$(BUILD) SHARED=$(SHARED) tests/run-all

test-binaries: $(AGENT_BIN) $(UNIT_BINS) $(FUZZ_REPLAY_BINS) $(MAN_PAGES) $(MAIL_SEND)

# The integration suite with the agent under valgrind (errors and leaks fail).
VALGRIND = valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible --quiet --suppressions=$(CURDIR)/tests/valgrind.supp
# Several test processes at once (up to 4, one per core): valgrind makes the
# agent, not the machine, the bottleneck.
VALGRIND_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
check-valgrind: $(AGENT_BIN)
	RTR_WRAPPER="$(VALGRIND)" RTR_AGENT=$(AGENT_BIN) SHARED=$(SHARED) python3 tests/integration/run.py --jobs $(VALGRIND_JOBS)

# CI builds them (with WERROR) so that `make bench` stays buildable.
bench-build: $(BENCH_BINS) $(BLAST)

bench: bench-build $(AGENT_BIN)
	BUILD=$(BUILD) SHARED=$(SHARED) tests/bench/run-bench

# rtr-agent against rsyslog and syslog-ng, side by side (issue 11). Installs
# what is missing, as `check` does; syslog-ng is unpacked into $(BUILD)/peers,
# never installed. Not run by CI: about 4 minutes, loopback only.
bench-peers:
	.ci/install-deps
	.ci/install-test-deps
	$(MAKE) $(AGENT_BIN) $(BLAST)
	tests/bench/peers/fetch-syslog-ng $(BUILD)/peers/syslog-ng
	python3 tests/bench/bench_peers.py --agent $(AGENT_BIN) --blast $(BLAST) \
	    --syslog-ng $(BUILD)/peers/syslog-ng

fuzz: $(FUZZ_REPLAY_BINS) $(if $(shell command -v $(FUZZ_CC)),$(FUZZ_LIBFUZZER_BINS))
	BUILD=$(BUILD) SHARED=$(SHARED) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run-fuzz

run:
	.ci/install-deps
	$(MAKE) -j"$$(nproc)" $(AGENT_BIN)
	$(AGENT_BIN) run -c systemd/rtr-agent.dev.json

# The unit, the example config and the logrotate snippet name the default
# install's paths; INSTALL_PATHS rewrites them for this one. A path matches
# only at its start (/usr/local/etc/rtr-agent holds no /etc/rtr-agent to
# rewrite). Another SYSCONFDIR: ConfigurationDirectory= only knows /etc.
INSTALL_PATHS = sed -E \
    -e 's,(^|[^[:alnum:]_./-])/usr/local/bin/,\1$(BINDIR)/,g' \
    -e 's,(^|[^[:alnum:]_./-])/usr/local/share/rtr-agent/,\1$(DATADIR)/,g' \
    -e 's,(^|[^[:alnum:]_./-])/etc/rtr-agent,\1$(SYSCONFDIR)/rtr-agent,g' \
    -e 's,(^|[^[:alnum:]_./-])/var/(lib|log)/rtr-agent,\1$(LOCALSTATEDIR)/\2/rtr-agent,g' \
    $(if $(filter-out /etc,$(SYSCONFDIR)),-e '/^ConfigurationDirectory=/d')
# $(call install_rewritten,SOURCE,TARGET): SOURCE through INSTALL_PATHS, mode 0644.
install_rewritten = { $(INSTALL_PATHS) $(1) > $(2).tmp && chmod 0644 $(2).tmp && \
                      mv -f $(2).tmp $(2); }
INSTALLED_CONFIG = $(DESTDIR)$(SYSCONFDIR)/rtr-agent/rtr-agent.json
INSTALLED_LOGROTATE = $(DESTDIR)$(LOGROTATEDIR)/rtr-agent

# The config and the logrotate snippet are the admin's once installed: only
# written where missing. The unit is replaced (local changes go in drop-ins).
install: $(AGENT_BIN) $(MAN_PAGES)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/mappings $(DESTDIR)$(SYSTEMDUNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/rtr-agent $(DESTDIR)$(LOGROTATEDIR) \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 $(AGENT_BIN) $(DESTDIR)$(BINDIR)/rtr-agent
	install -m 0644 $(BUILD)/man/rtr-agent.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(BUILD)/man/rtr-agent.json.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 systemd/users.example.csv systemd/README.md $(DESTDIR)$(DATADIR)/
	install -m 0644 mappings/*.json mappings/README.md $(DESTDIR)$(DATADIR)/mappings/
	install -d $(DESTDIR)$(DATADIR)/mappings/policies
	install -m 0644 mappings/policies/*.json $(DESTDIR)$(DATADIR)/mappings/policies/
	$(call install_rewritten,systemd/rtr-agent.service,$(DESTDIR)$(SYSTEMDUNITDIR)/rtr-agent.service)
	[ -e $(INSTALLED_CONFIG) ] || \
	    $(call install_rewritten,systemd/rtr-agent.json,$(INSTALLED_CONFIG))
	[ -e $(INSTALLED_LOGROTATE) ] || \
	    $(call install_rewritten,systemd/rtr-agent.logrotate,$(INSTALLED_LOGROTATE))

# Leaves the config folder, and the logrotate snippet when it was changed.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/rtr-agent $(DESTDIR)$(SYSTEMDUNITDIR)/rtr-agent.service \
	    $(DESTDIR)$(MANDIR)/man8/rtr-agent.8 $(DESTDIR)$(MANDIR)/man5/rtr-agent.json.5
	rm -rf $(DESTDIR)$(DATADIR)
	if $(INSTALL_PATHS) systemd/rtr-agent.logrotate | cmp -s - $(INSTALLED_LOGROTATE); then \
	    rm -f $(INSTALLED_LOGROTATE); \
	elif [ -e $(INSTALLED_LOGROTATE) ]; then \
	    echo "kept $(INSTALLED_LOGROTATE): changed since it was installed"; \
	fi

# The Debian package, $(DEB): dpkg-buildpackage on a copy of the files it is
# built from, with systemd/debian as the copy's debian/ (systemd/README.md,
# "Debian package"). The outer make's variables stay out of it (MAKEFLAGS):
# debian/rules sets the install's. Its version is RTR_VERSION, which the top
# of systemd/debian/changelog must name.
RTR_VERSION := $(shell sed -n 's/^\#define RTR_VERSION "\(.*\)"$$/\1/p' agent/core/version.h)
DEB = $(DEBDIR)/rtr-agent_$(RTR_VERSION)_$(shell dpkg --print-architecture 2>/dev/null).deb
DEB_TREE := Makefile README.md $(wildcard LICENSE* CHANGELOG*) \
            agent/main.c $(AGENT_SRC) $(wildcard agent/*/*.h) $(PARSERS_SRC) \
            $(wildcard parsers/*.h mappings/*) tests/tools/keyref.c \
            $(filter-out systemd/debian,$(wildcard systemd/*)) \
            $(filter-out systemd/debian/source,$(wildcard systemd/debian/*)) \
            $(wildcard systemd/debian/source/*)
DEB_SRC = $(DEBDIR)/src/rtr-agent-$(RTR_VERSION)

deb: $(DEB)

# (its `rtr-agent version` names the commit too)
$(DEB): $(DEB_TREE) $(DEB_COMMIT_STAMP)
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || { \
	    echo "make deb needs dpkg-dev and debhelper (.ci/install-test-deps installs them)" >&2; \
	    exit 1; }
	@sed -n 1p systemd/debian/changelog | grep -q '^rtr-agent ($(RTR_VERSION)) ' || { \
	    echo "systemd/debian/changelog: the first entry is not version $(RTR_VERSION)" \
	        "(RTR_VERSION, agent/core/version.h)" >&2; exit 1; }
	rm -rf $(DEBDIR)/src
	mkdir -p $(DEB_SRC)
	@echo "tar -cf - \$$(DEB_TREE) | tar -xf - -C $(DEB_SRC)"
	@tar -cf - $(DEB_TREE) | tar -xf - -C $(DEB_SRC)
	mv $(DEB_SRC)/systemd/debian $(DEB_SRC)/debian
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
	    dpkg-buildpackage -b -us -uc -Jauto
	mv -f $(DEBDIR)/src/*.deb $(DEBDIR)/

format-check:
	clang-format --dry-run --Werror $(PARSERS_SRC) $(AGENT_SRC) agent/main.c parsers/*.h agent/*/*.h

# Includes point down the stages of agent/README.md, without cycles.
layering-check:
	tests/tools/layering-check

clean:
	rm -rf build

# Only the compiler's dependency files: bench-peers unpacks packages (with
# folders such as etc/init.d) under $(BUILD)/peers.
-include $(shell find $(BUILD) -path '$(BUILD)/peers' -prune -o -type f -name '*.d' -print 2>/dev/null)
