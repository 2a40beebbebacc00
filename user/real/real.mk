# Real programs in the initramfs (issue 6, item 8), included by user/Makefile.
#
#   /bin/hello-musl   user/bin/hello.c built against musl by Zig's `zig cc` (PyPI ziglang,
#                     installed by scripts/setup.sh), next to /bin/hello (glibc)
#   /bin/lua          Lua 5.4 from Debian's source package lua5.4 (bookworm), unmodified:
#                     its C sources compiled static against glibc with riscv64-linux-gnu-gcc
#   /data/hello.lua   a small script for it (user/real/hello.lua) that checks itself
#
# The Debian source is fetched once by fetch-debian-src.sh into $(BUILD)/debian-src (not
# in git; kept by `make clean`). Without zig, or if the source cannot be fetched, the
# build goes on without that program and says so. Sets REAL_FILES (root-relative paths)
# for the Makefile's ROOT_FILES.

# Included before the Makefile's own rules: keep `all` the default goal.
all:

REAL_FILES :=
# Other prerequisites of the archive (the stamp of the BusyBox applet links).
REAL_DEPS :=

# ---- /bin/hello-musl ----
ZIG := $(shell python3 -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))' 2>/dev/null)
ifneq ($(ZIG),)
REAL_FILES += bin/hello-musl
# No dependency file: hello.c includes only libc headers (and zig's -MF names a temporary
# object). The first zig build on a machine compiles musl into ~/.cache/zig (about a minute).
$(OUT)/bin/hello-musl: $(USER_DIR)/bin/hello.c $(USER_DIR)/real/real.mk
	@mkdir -p $(@D)
	$(call say,ZIGCC,bin/hello-musl)
	$(Q)$(ZIG) cc -target riscv64-linux-musl -static -O2 -Wall -Werror -std=gnu11 -o $@ $<
else
$(warning real: skipping /bin/hello-musl: python3 module ziglang missing (run scripts/setup.sh))
endif

# ---- /bin/lua and /data/hello.lua ----
LUA_DEB_VERSION := 5.4.4-3+deb12u1
ifeq ($(filter clean,$(MAKECMDGOALS)),)
LUA_SRC := $(shell sh $(USER_DIR)/real/fetch-debian-src.sh lua5.4 $(LUA_DEB_VERSION) $(BUILD)/debian-src)
endif
ifneq ($(LUA_SRC),)
REAL_FILES += bin/lua data/hello.lua
# Upstream's `make posix` (LUA_USE_POSIX, LUA_COMPAT_5_3, -std=gnu99), without Debian's
# libtool/shared-library build: the interpreter lua.c linked with the core and libraries
# (every src/*.c except the compiler luac.c).
# Debian's luaconf.h includes lua5.4-deb-multiarch.h, which debian/rules writes at
# configure time; it is written the same way here, into the build directory.
LUA_GEN := $(OUT)/real/lua-gen
LUA_CFLAGS := -std=gnu99 -O2 -static -Wall -DLUA_COMPAT_5_3 -DLUA_USE_POSIX -I$(LUA_GEN)
LUA_OBJS := $(patsubst $(LUA_SRC)/src/%.c,$(OUT)/real/lua/%.o,$(filter-out %/luac.c,$(wildcard $(LUA_SRC)/src/*.c)))

$(LUA_GEN)/lua5.4-deb-multiarch.h: $(USER_DIR)/real/real.mk
	@mkdir -p $(@D)
	$(Q)printf '#ifndef _LUA_DEB_MULTIARCH_\n#define _LUA_DEB_MULTIARCH_\n#define DEB_HOST_MULTIARCH "riscv64-linux-gnu"\n#endif\n' > $@

$(OUT)/real/lua/%.o: $(LUA_SRC)/src/%.c $(LUA_GEN)/lua5.4-deb-multiarch.h
	@mkdir -p $(@D)
	$(call say,CC,lua/$*.o)
	$(Q)$(CC) $(LUA_CFLAGS) -MMD -MP -c -o $@ $<

$(OUT)/bin/lua: $(LUA_OBJS)
	@mkdir -p $(@D)
	$(call say,LD,bin/lua)
	$(Q)$(CC) $(LUA_CFLAGS) -o $@ $(LUA_OBJS) -lm

$(ROOT)/data/hello.lua: $(USER_DIR)/real/hello.lua
	@mkdir -p $(@D)
	$(Q)cp $< $@ && chmod 0644 $@

-include $(LUA_OBJS:.o=.d)
endif

# ---- /bin/busybox and its applet links ----
# BusyBox 1.35 from Debian's source package busybox (bookworm), with Debian's static
# configuration kept in busybox.config; built out of tree (O=) with the riscv64 cross
# compiler, static against glibc. The applets are symbolic links to /bin/busybox under
# /usr/bin and /usr/sbin only (BusyBox's /bin and /sbin applets move there), so that
# pagoda's own /init and /bin programs, which the tests use, keep their names; a shell
# with PATH=/usr/sbin:/usr/bin:/sbin:/bin finds BusyBox's tools first. /linuxrc is left out.
BUSYBOX_DEB_VERSION := 1:1.35.0-4+deb12u1
ifeq ($(filter clean,$(MAKECMDGOALS)),)
BUSYBOX_SRC := $(shell sh $(USER_DIR)/real/fetch-debian-src.sh busybox $(BUSYBOX_DEB_VERSION) $(BUILD)/debian-src)
endif
ifneq ($(BUSYBOX_SRC),)
REAL_FILES += bin/busybox
BUSYBOX_OUT := $(OUT)/real/busybox
BUSYBOX_MAKE := $(MAKE) -C $(BUSYBOX_SRC) O=$(BUSYBOX_OUT) CROSS_COMPILE=riscv64-linux-gnu-
BUSYBOX_LINKS := $(OUT)/real/busybox-links.stamp
REAL_DEPS += $(BUSYBOX_LINKS)

$(BUSYBOX_OUT)/.config: $(USER_DIR)/real/busybox.config
	@mkdir -p $(@D)
	$(Q)cp $< $@ && yes "" | $(BUSYBOX_MAKE) oldconfig > $(BUSYBOX_OUT)/config.log 2>&1

# The whole build is one step (BusyBox's Kbuild tracks its own dependencies); its
# output goes to build.log. Two jobs: the build machine is shared.
$(OUT)/bin/busybox: $(BUSYBOX_OUT)/.config
	$(call say,BUILD,busybox)
	$(Q)$(BUSYBOX_MAKE) -j2 busybox busybox.links > $(BUSYBOX_OUT)/build.log 2>&1 || \
		{ tail -20 $(BUSYBOX_OUT)/build.log; exit 1; }
	@mkdir -p $(@D)
	$(Q)cp $(BUSYBOX_OUT)/busybox_unstripped $@

# One link per applet of busybox.links, /bin -> /usr/bin and /sbin -> /usr/sbin.
$(BUSYBOX_LINKS): $(OUT)/bin/busybox
	$(call say,LINKS,busybox-applets)
	$(Q)sed -n 's#^/\(bin\|usr/bin\)/#usr/bin/#p; s#^/\(sbin\|usr/sbin\)/#usr/sbin/#p' \
		$(BUSYBOX_OUT)/busybox.links | while read -r l; do \
		mkdir -p $(ROOT)/$${l%/*} && ln -sfn /bin/busybox $(ROOT)/$$l; done && touch $@
endif
