# libshrinker and memory-hog.  `make`, `make check`, `make install`, `make demo`.
# make check SANITIZE=address|undefined|thread builds everything in its own
# directory with that sanitizer (address also turns on undefined).

VERSION_MAJOR := $(shell sed -n 's/^\#define SHRINKER_VERSION_MAJOR //p' include/shrinker.h)
VERSION_MINOR := $(shell sed -n 's/^\#define SHRINKER_VERSION_MINOR //p' include/shrinker.h)
VERSION_PATCH := $(shell sed -n 's/^\#define SHRINKER_VERSION_PATCH //p' include/shrinker.h)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

CC ?= cc
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
BINDIR ?= $(PREFIX)/bin
DESTDIR ?=

SANITIZE ?=
B ?= build/$(if $(SANITIZE),$(SANITIZE),default)-$(notdir $(CC))

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT ?= -O2 -g
SAN_address := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_undefined := -fsanitize=undefined -fno-sanitize-recover=undefined
SAN_thread := -fsanitize=thread
SANFLAGS := $(SAN_$(SANITIZE))
ifneq ($(SANITIZE),)
ifeq ($(SANFLAGS),)
$(error SANITIZE must be address, undefined or thread)
endif
endif

CPPFLAGS += -Iinclude -Isrc
CFLAGS += -std=gnu11 $(OPT) $(WARN) -pthread $(SANFLAGS)
LIB_CFLAGS := -fPIC -fvisibility=hidden
LDFLAGS += -pthread $(SANFLAGS) $(if $(STATIC_LINK),-static)

LIB_SRC := $(sort $(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/src/%.o)
SONAME := libshrinker.so.$(VERSION_MAJOR)
STATIC := $(B)/libshrinker.a
SHARED := $(B)/libshrinker.so.$(VERSION)

TEST_SRC := $(sort $(wildcard tests/test-*.c))
TESTS := $(TEST_SRC:tests/%.c=$(B)/tests/%)
# Built twice: an OSv program linked against each form of the library.
OSV_TESTS := $(B)/tests/osv-static $(B)/tests/osv-shared
TEST_HELPERS := $(B)/tests/helpers.o
# Programs the tests run (in child cgroups, in the VM).
PROGS := $(patsubst tests/prog-%.c,$(B)/tests/prog-%,$(filter-out tests/prog-glib.c,$(wildcard tests/prog-*.c)))
# A GLib main-loop program, where libglib2.0-dev is installed.
HAVE_GLIB := $(shell pkg-config --exists glib-2.0 && echo yes)
PROGS += $(if $(HAVE_GLIB),$(B)/tests/prog-glib)

# Fuzz targets: one per parser.  The replay binaries run the corpus in make
# check under whatever sanitizer the build has; make fuzz runs libFuzzer.
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_REPLAY := $(FUZZ_TARGETS:%=$(B)/fuzz/replay-%)

HOG_SRC := $(sort $(wildcard tools/memory-hog/*.c))
HOG_OBJ := $(HOG_SRC:tools/memory-hog/%.c=$(B)/hog/%.o)
HOG := $(B)/memory-hog
# memory-hog's caches, which the tests and cachebench link too.
HOG_CACHE_OBJ := $(B)/hog/cache.o $(B)/hog/slab.o $(B)/hog/release.o $(B)/hog/container.o

COMPETITOR := $(B)/competitor
CACHEBENCH := $(B)/cachebench
CONTAINERBENCH := $(B)/containerbench
BRAKEBENCH := $(B)/brakebench

# The malloc brake (brake/brake.c): a library to link or preload that makes
# allocating threads wait for the reclaimer below the hard watermark.
BRAKE_SONAME := libshrinker-brake.so.$(VERSION_MAJOR)
BRAKE := $(B)/libshrinker-brake.so.$(VERSION)

# Programs link the shared library (so that the brake can be preloaded into
# them), found beside them in the build tree, unless STATIC_LINK is set.
# NO_RPATH=1 (the Debian package): the installed library is found in the
# system's library path, and Debian forbids a custom one.
RPATH = $(if $(NO_RPATH),,-Wl,-rpath,'$(1)')
LINK_SHARED = $(if $(STATIC_LINK),$(STATIC),-L$(B) -lshrinker $(call RPATH,$$ORIGIN$(1):$$ORIGIN/../lib))
DEP_LIB := $(if $(STATIC_LINK),$(STATIC),$(SHARED))

.PHONY: all lib check check-build check-breaks install uninstall clean demo bench bench-race bench-pages analyze check-valgrind abi-baseline bench-brake bench-calls bench-procs bench-race-many bench-container
all: lib $(HOG) $(COMPETITOR) $(CACHEBENCH) $(BRAKEBENCH) $(CONTAINERBENCH)
lib: $(STATIC) $(SHARED) $(BRAKE) $(B)/libshrinker.pc

$(BRAKE): brake/brake.c include/shrinker.h $(SHARED)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LIB_CFLAGS) -fno-builtin -shared \
		-Wl,-soname,$(BRAKE_SONAME) -Wl,-z,defs -o $@ $< \
		-L$(B) -lshrinker $(call RPATH,$$ORIGIN) $(LDFLAGS)
	ln -sf libshrinker-brake.so.$(VERSION) $(B)/$(BRAKE_SONAME)
	ln -sf $(BRAKE_SONAME) $(B)/libshrinker-brake.so

$(B)/src/%.o: src/%.c src/internal.h include/shrinker.h include/shrinker-cache.h $(wildcard src/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LIB_CFLAGS) -c -o $@ $<

$(STATIC): $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ) src/libshrinker.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libshrinker.map \
		-Wl,-z,defs -o $@ $(LIB_OBJ) $(LDFLAGS)
	ln -sf libshrinker.so.$(VERSION) $(B)/$(SONAME)
	ln -sf $(SONAME) $(B)/libshrinker.so

# Paths under the prefix are written relative to it, so that the file can be
# relocated (pkg-config --define-prefix).
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' \
	    -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|' \
	    -e 's|@VERSION@|$(VERSION)|' libshrinker.pc.in
$(B)/libshrinker.pc: libshrinker.pc.in Makefile
	@mkdir -p $(@D)
	$(PC_SED) > $@

$(B)/tests/helpers.o: tests/helpers.c tests/helpers.h tests/tap.h include/shrinker.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) -c -o $@ $<

# Tests build paths with snprintf into fixed buffers on purpose; a cut path
# fails the test that uses it.
TEST_CFLAGS := $(CFLAGS) $(shell $(CC) -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-format-truncation)
# Linked against the shared library, so that its malloc interposes.
$(B)/tests/test-nomalloc: tests/test-nomalloc.c tests/tap.h tests/helpers.h $(TEST_HELPERS) $(SHARED)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests $(TEST_CFLAGS) $(if $(SANITIZE),-DSANITIZED) -o $@ $< \
		$(TEST_HELPERS) -L$(B) -lshrinker -Wl,-rpath,$(CURDIR)/$(B) $(LDFLAGS)
# memory-hog's cache on its own.
$(B)/tests/test-cache: tests/test-cache.c tests/tap.h tests/helpers.h $(TEST_HELPERS) $(HOG_CACHE_OBJ) $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests -Itools/memory-hog $(TEST_CFLAGS) -o $@ $< $(HOG_CACHE_OBJ) \
		$(TEST_HELPERS) $(STATIC) $(LDFLAGS) -lm
$(B)/tests/test-%: tests/test-%.c tests/tap.h tests/helpers.h $(TEST_HELPERS) $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests $(TEST_CFLAGS) -o $@ $< $(TEST_HELPERS) $(STATIC) $(LDFLAGS) -lm

$(B)/tests/prog-glib: tests/prog-glib.c $(DEP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(call LINK_SHARED,/..) \
		$(shell pkg-config --cflags --libs glib-2.0) $(LDFLAGS)
$(B)/tests/prog-%: tests/prog-%.c $(DEP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(call LINK_SHARED,/..) $(LDFLAGS)

# Run set-uid from a directory of its own, where the loader takes no
# $$ORIGIN and no LD_LIBRARY_PATH: the library is linked in.
$(B)/tests/prog-secure: tests/prog-secure.c $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(STATIC) $(LDFLAGS)

# The malloc-based LRU cache example, for its end-to-end test and the
# benchmark of a cache whose frees come back as pages only in part.
LRU_EXAMPLE := $(B)/examples/lru
$(B)/examples/lru: examples/lru.c $(DEP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(call LINK_SHARED,/..) $(LDFLAGS)

# The RocksDB example, for its end-to-end test, where librocksdb-dev is
# installed (it has no pkg-config file).
HAVE_ROCKSDB := $(shell test -f /usr/include/rocksdb/c.h && echo yes)
ROCKSDB_EXAMPLE := $(if $(HAVE_ROCKSDB),$(B)/examples/rocksdb)
$(B)/examples/rocksdb: examples/rocksdb.c $(DEP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(call LINK_SHARED,/..) -lrocksdb $(LDFLAGS)

# The SQLite example, for its end-to-end test, where libsqlite3-dev is
# installed (found through pkg-config, as examples/Makefile finds it).
HAVE_SQLITE := $(shell pkg-config --exists sqlite3 && echo yes)
SQLITE_EXAMPLE := $(if $(HAVE_SQLITE),$(B)/examples/sqlite)
$(B)/examples/sqlite: examples/sqlite.c $(DEP_LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(call LINK_SHARED,/..) \
		$(shell pkg-config --cflags --libs sqlite3) $(LDFLAGS)

$(B)/fuzz/replay-%: tests/fuzz/fuzz-%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< tests/fuzz/replay.c $(STATIC) $(LDFLAGS)

# The OSv program includes none of our headers and declares the prototype
# itself, as OSv's documentation shows.
$(B)/tests/osv-static: examples/osv.c $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(STATIC) $(LDFLAGS)
$(B)/tests/osv-shared: examples/osv.c $(SHARED)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< -L$(B) -lshrinker -Wl,-rpath,$(CURDIR)/$(B) $(LDFLAGS)

$(B)/hog/%.o: tools/memory-hog/%.c $(wildcard tools/memory-hog/*.h) include/shrinker.h include/shrinker-cache.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<
$(HOG): $(HOG_OBJ) $(DEP_LIB)
	$(CC) -o $@ $(HOG_OBJ) $(call LINK_SHARED) $(LDFLAGS) -lm

# The benchmarks' cache program: memory-hog's caches and workers, another
# strategy around them.
$(CACHEBENCH): bench/cachebench.c $(HOG_CACHE_OBJ) $(B)/hog/workers.o $(STATIC)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(HOG_CACHE_OBJ) $(B)/hog/workers.o $(STATIC) $(LDFLAGS)

# The cache container against a single-mutex hash-plus-LRU.
$(CONTAINERBENCH): bench/containerbench.c include/shrinker-cache.h $(STATIC)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(STATIC) $(LDFLAGS) -lm

# What the malloc brake costs: linked to the shared library, so that the
# brake can be preloaded.
$(BRAKEBENCH): bench/brakebench.c $(DEP_LIB)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(call LINK_SHARED) $(LDFLAGS)

$(COMPETITOR): tools/competitor/main.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

PROVE ?= prove
# Tests make check leaves out (make patterns, e.g. %/test-pages
# tests/vm/run.sh): none by default; .ci/run's second compiler pass leaves
# out the longest end-to-end runs, which the first pass made.
CHECK_OMIT ?=
# Everything the tests run.
check-build: all $(TESTS) $(PROGS) $(OSV_TESTS) $(FUZZ_REPLAY) $(SQLITE_EXAMPLE) $(LRU_EXAMPLE) $(ROCKSDB_EXAMPLE)
check: check-build
	TOP_SRCDIR=$(CURDIR) BUILD=$(B) SANITIZE=$(SANITIZE) $(PROVE) -f --exec '' \
		$(filter-out $(CHECK_OMIT),$(TESTS) $(wildcard tests/*.sh) tests/vm/run.sh tests/vm/systemd.sh)

# Each row of docs/RELIABILITY.md broken on purpose in a scratch copy: its
# test must fail there and pass here (tests/break/run.sh; not part of check).
check-breaks:
	$(PROVE) -f --exec '' tests/break/run.sh

# The benchmarks: every scenario x strategy in child cgroups, BENCHMARKS.md.
bench: all
	B=$(B) bench/run.sh

# Caches of malloc()ed entries under a squeeze (bench/pages.sh): the
# examples they use, build/bench/pages.md.
bench-pages: all $(LRU_EXAMPLE) $(ROCKSDB_EXAMPLE) $(SQLITE_EXAMPLE)
	B=$(B) bench/pages.sh

# The ABI baseline that tests/test-abi.sh holds the library to: update it
# on purpose, in the commit that changes the ABI (abigail-tools).
abi-baseline: lib
	abidw --no-corpus-path --no-comp-dir-path --headers-dir include \
		--drop-private-types $(SHARED) > abi/libshrinker.abi

# Win the race: threaded programs with and without the brake, 20 runs
# each, thresholds on and off (build/bench/race.md; about 20 minutes).
bench-race: all $(B)/tests/prog-grower
	B=$(B) bench/race.sh

# What the brake costs with room to spare (no cgroup needed).
bench-brake: all
	B=$(B) bench/brake.sh

# The brake with 16 and 32 threads, blocks of 64 KiB and 1 MiB, in 64 and
# 128 MiB (bench/race-many.sh; about 10 minutes).
bench-race-many: all $(B)/tests/prog-grower
	B=$(B) bench/race-many.sh

# What the hot calls cost per call from 1 to 8 threads, beside the library
# before the per-CPU stocks (bench/calls.sh; about a minute).
bench-calls: all
	B=$(B) bench/calls.sh

# The cache container against a single-mutex LRU (bench/container.sh;
# about 6 minutes; make bench runs it too).
bench-container: all
	B=$(B) bench/container.sh

# 8, 32 and 128 processes of the library in one cgroup with a competitor
# (bench/procs.sh; about 17 minutes with 10 rounds).
bench-procs: all
	B=$(B) bench/procs.sh

# The programs the VM tests run in the guest, linked statically.
VM_BINS := $(B)/memory-hog $(B)/competitor $(B)/tests/prog-grower $(BRAKE)
.PHONY: vm-bins fuzz
# libFuzzer on every parser (clang, libclang-rt-14-dev); FUZZ_RUNS sets the
# executions per target; the counts go to tests/fuzz/RUNS.md.
fuzz:
	scripts/fuzz.sh
vm-bins: $(VM_BINS)

# The main job: memory-hog in a 512 MiB cgroup with a competitor, ~30 s.
demo: all
	HOG=$(HOG) COMPETITOR=$(COMPETITOR) OUT=build/demo scripts/demo.sh

# Static analysis: cppcheck and clang-tidy (.clang-tidy says which checks and
# why some are off), on the library and the programs.
analyze:
	cppcheck --quiet --enable=warning,performance,portability --std=c11 \
		--inline-suppr --error-exitcode=1 -Iinclude -Isrc src/ tools/
	clang-tidy --quiet src/*/*.c tools/memory-hog/*.c tools/competitor/*.c \
		-- -Iinclude -Isrc -D_GNU_SOURCE -std=gnu11

# The unit tests under valgrind's memcheck (errors and definite leaks fail).
VALGRIND_TESTS := reclaim deferred parse limits registry nomalloc container
check-valgrind: all $(VALGRIND_TESTS:%=$(B)/tests/test-%) $(PROGS)
	TOP_SRCDIR=$(CURDIR) BUILD=$(B) VALGRIND=1 $(PROVE) -f \
		--exec 'valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite' \
		$(VALGRIND_TESTS:%=$(B)/tests/test-%)

install: lib $(HOG)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/osv \
		$(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 755 $(HOG) $(DESTDIR)$(BINDIR)/
	install -m 644 man/memory-hog.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/*.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 644 include/shrinker.h include/shrinker-cache.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 include/osv/shrinker.h $(DESTDIR)$(INCLUDEDIR)/osv/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(BRAKE) $(DESTDIR)$(LIBDIR)/
	ln -sf libshrinker.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libshrinker.so
	ln -sf libshrinker-brake.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(BRAKE_SONAME)
	ln -sf $(BRAKE_SONAME) $(DESTDIR)$(LIBDIR)/libshrinker-brake.so
	$(PC_SED) > $(DESTDIR)$(LIBDIR)/pkgconfig/libshrinker.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/memory-hog $(DESTDIR)$(MANDIR)/man1/memory-hog.1 \
	      $(patsubst man/%,$(DESTDIR)$(MANDIR)/man3/%,$(wildcard man/*.3))
	rm -f $(DESTDIR)$(INCLUDEDIR)/shrinker.h $(DESTDIR)$(INCLUDEDIR)/shrinker-cache.h $(DESTDIR)$(INCLUDEDIR)/osv/shrinker.h \
	      $(DESTDIR)$(LIBDIR)/libshrinker.* $(DESTDIR)$(LIBDIR)/pkgconfig/libshrinker.pc

clean:
	rm -rf build
