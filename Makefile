# pagoda: the two commands a newcomer needs are `make run` and `make test`.
# Both first run scripts/setup.sh (idempotent: silent when everything is installed).

BUILD      := build
TARGET     := riscv64gc-unknown-none-elf
KERNEL_ELF := target/$(TARGET)/release/pagoda
KERNEL_BIN := $(BUILD)/pagoda.bin
CARGO      := RUSTC_BOOTSTRAP=1 cargo
KCARGO     := $(CARGO) build -p pagoda-kernel --release --target $(TARGET) -Z build-std=core,alloc

.PHONY: all setup kernel user linux run test fuzz fuzz-host bench lint clean

all: kernel user

setup:
	@scripts/setup.sh

kernel: setup
	@$(KCARGO) --quiet
	@mkdir -p $(BUILD)
	@riscv64-linux-gnu-objcopy -O binary $(KERNEL_ELF) $(KERNEL_BIN)

# The user programs and the initramfs (build/initramfs.cpio).
user: setup
	@$(MAKE) -s -C user

# Boot pagoda in QEMU. On a terminal: interactive; otherwise the demo list, then power off.
run: kernel user
	@python3 tools/run.py $(KERNEL_BIN)

# Every test: lints, host unit/property/stress tests, in-QEMU tests on several machine
# shapes. Last line: "N passed, N failed"; non-zero exit on any failure.
test: kernel user
	@python3 tools/test.py --kernel $(KERNEL_BIN)

# A long run of the in-guest system-call fuzzer (/tests/fuzz), booted at -smp 1 and 4:
#   make fuzz SEEDS=1-40 CALLS=2500 [SMP=1,4] [MEM=256M]
# CALLS counts the top fuzzing process's calls per seed; its children make about as
# many again. A failing seed prints its batch and the replay command.
SEEDS ?= 1-8
CALLS ?= 2500
SMP ?= 1,4
MEM ?= 256M
fuzz: kernel user
	@python3 tools/test.py --kernel $(KERNEL_BIN) --only fuzz --fuzz-seeds $(SEEDS) \
		--fuzz-calls $(CALLS) --fuzz-smp $(SMP) --fuzz-mem $(MEM)

# Coverage-guided fuzzing on the host (libFuzzer via cargo-fuzz, Debian's toolchain, no
# sanitizer): RUNS executions per target (tools/fuzz/run.sh); then the memory manager's
# property tests (heap, page tables, ASIDs, frame allocator, the vm model) with CASES
# cases each instead of their defaults.
RUNS ?= 10000000
CASES ?= 1000
FUZZ_TARGETS ?= elf_plan cpio_index devicetree swap_header frame_ops
fuzz-host: setup user
	@tools/fuzz/run.sh $(BUILD) $(RUNS) $(FUZZ_TARGETS)
	@PROPTEST_CASES=$(CASES) cargo test --release -p pagoda-mm --test heap_host \
		--test paging_table --test tlb_asid --test frame_model --test vm_suite

# The reference Linux 6.1 of `make bench`: Debian's linux-source-6.1 with
# tools/linux/config-6.1, built once into $(BUILD)/linux/Image (tens of minutes), then
# reused until tools/linux/ changes. Only `make bench` needs it; `make test` does not.
linux: setup
	@tools/linux/build.sh $(BUILD) >/dev/null

# Side-by-side benchmarks: in-guest instruction counts of pagoda next to Linux 6.1 on the
# same QEMU (tables, and build/bench/: runs.json, CSV files, SVG plots), then the host
# benchmarks (release).
bench: kernel user linux
	@python3 tools/bench.py $(KERNEL_BIN) --linux $(BUILD)/linux/Image
	@$(CARGO) bench -p pagoda-mm --bench frames
	@$(CARGO) bench -p pagoda-mm --bench heap
	@$(CARGO) bench -p pagoda-mm --bench paging
	@$(CARGO) bench -p pagoda-formats --bench cpio

lint: setup
	@$(CARGO) fmt --all --check
	@$(CARGO) clippy -p pagoda-mm --all-targets --quiet -- -D warnings
	@$(CARGO) clippy -p pagoda-formats --all-targets --quiet -- -D warnings
	@$(CARGO) clippy -p pagoda-kernel --release --target $(TARGET) -Z build-std=core,alloc --quiet -- -D warnings

clean:
	@cargo clean
	@rm -rf $(BUILD)
