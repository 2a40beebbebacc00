//! The kernel's reading of the device tree against hostile trees: overflowing and
//! zero-sized regions, too many of a kind, hart ids out of range or repeated, RAM beyond
//! the direct map or overlapping, a truncated blob, odd-sized properties.

use pagoda_formats::devicetree::{BootError, BootInfo, Devices, MAX_BOOTARGS, Region};
use pagoda_mm::addr::PhysAddr;

/// A flattened device tree writer (version 17), just enough for these tests.
#[derive(Default)]
struct Dt {
    structure: Vec<u8>,
    strings: Vec<u8>,
    reserved: Vec<(u64, u64)>,
}

fn pad(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

fn cells(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// `<start size>` with two address and two size cells.
fn reg64(start: u64, size: u64) -> Vec<u8> {
    cells(&[
        (start >> 32) as u32,
        start as u32,
        (size >> 32) as u32,
        size as u32,
    ])
}

fn text(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

impl Dt {
    fn begin(&mut self, name: &str) -> &mut Self {
        self.structure.extend(cells(&[1]));
        self.structure.extend(text(name));
        pad(&mut self.structure);
        self
    }

    fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let off = self.strings.len() as u32;
        self.strings.extend(text(name));
        self.structure.extend(cells(&[3, value.len() as u32, off]));
        self.structure.extend_from_slice(value);
        pad(&mut self.structure);
        self
    }

    fn end(&mut self) -> &mut Self {
        self.structure.extend(cells(&[2]));
        self
    }

    fn blob(&self) -> Vec<u8> {
        let mut rsv: Vec<u8> = Vec::new();
        for &(a, s) in self.reserved.iter().chain([(0, 0)].iter()) {
            rsv.extend(a.to_be_bytes());
            rsv.extend(s.to_be_bytes());
        }
        let mut structure = self.structure.clone();
        structure.extend(cells(&[9]));
        let off_rsv = 40u32;
        let off_struct = off_rsv + rsv.len() as u32;
        let off_strings = off_struct + structure.len() as u32;
        let total = off_strings + self.strings.len() as u32;
        let mut b = cells(&[
            0xd00d_feed,
            total,
            off_struct,
            off_strings,
            off_rsv,
            17,
            16,
            0,
            self.strings.len() as u32,
            structure.len() as u32,
        ]);
        b.extend(rsv);
        b.extend(structure);
        b.extend_from_slice(&self.strings);
        b
    }
}

const RAM: u64 = 0x8000_0000;
const KERNEL: Region = Region {
    start: PhysAddr(0x8020_0000),
    end: PhysAddr(0x8040_0000),
};

/// QEMU `virt`-like: 128 MiB at 2 GiB, two harts, a UART, a finisher, an initrd;
/// `memory` and `cpus` write those nodes (a test changes them).
fn tree(memory: impl Fn(&mut Dt), cpus: impl Fn(&mut Dt)) -> Vec<u8> {
    let mut dt = Dt::default();
    dt.reserved.push((0x8700_0000, 0x1000));
    dt.begin("")
        .prop("#address-cells", &cells(&[2]))
        .prop("#size-cells", &cells(&[2]));
    dt.begin("chosen")
        .prop("bootargs", &text("ktest=all vm=eager"))
        .prop("linux,initrd-start", &cells(&[0, 0x8600_0000]))
        .prop("linux,initrd-end", &cells(&[0, 0x8610_0000]))
        .prop("rng-seed", &[1, 2, 3, 4, 5, 6, 7, 8, 9])
        .end();
    memory(&mut dt);
    dt.begin("cpus")
        .prop("#address-cells", &cells(&[1]))
        .prop("#size-cells", &cells(&[0]))
        .prop("timebase-frequency", &cells(&[10_000_000]));
    cpus(&mut dt);
    dt.end();
    dt.begin("soc")
        .prop("#address-cells", &cells(&[2]))
        .prop("#size-cells", &cells(&[2]));
    dt.begin("serial@10000000")
        .prop("compatible", &text("ns16550a"))
        .prop("reg", &reg64(0x1000_0000, 0x100))
        .end();
    dt.begin("test@100000")
        .prop("compatible", b"sifive,test1\0sifive,test0\0syscon\0")
        .prop("reg", &reg64(0x10_0000, 0x1000))
        .end();
    dt.end();
    dt.begin("reserved-memory")
        .prop("#address-cells", &cells(&[2]))
        .prop("#size-cells", &cells(&[2]))
        .prop("ranges", &[]);
    dt.begin("mmode@80000000")
        .prop("reg", &reg64(RAM, 0x4_0000))
        .end();
    dt.end();
    dt.end();
    dt.blob()
}

fn memory_node(dt: &mut Dt, name: &str, reg: &[u8]) {
    dt.begin(name)
        .prop("device_type", &text("memory"))
        .prop("reg", reg)
        .end();
}

fn ram_128m(dt: &mut Dt) {
    memory_node(dt, "memory@80000000", &reg64(RAM, 128 << 20));
}

fn cpu(dt: &mut Dt, id: u32) {
    dt.begin(&format!("cpu@{id}"))
        .prop("device_type", &text("cpu"))
        .prop("reg", &cells(&[id]))
        .prop("status", &text("okay"))
        .end();
}

fn two_harts(dt: &mut Dt) {
    cpu(dt, 0);
    cpu(dt, 1);
}

fn parse(blob: &[u8]) -> Result<BootInfo, BootError> {
    let fdt = pagoda_formats::devicetree::open(blob)?;
    let devices = Devices::scan(&fdt)?;
    BootInfo::parse(&fdt, PhysAddr(0x8700_0000), KERNEL, devices)
}

#[test]
fn a_virt_machine_is_read_whole() {
    let info = parse(&tree(ram_128m, two_harts)).unwrap();
    assert_eq!(info.ram_bytes(), 128 << 20);
    assert_eq!(info.harts.as_slice(), [0, 1]);
    assert_eq!(info.timebase_hz, 10_000_000);
    assert_eq!(info.arg("vm"), Some("eager"));
    assert_eq!(info.initrd.unwrap().size(), 0x10_0000);
    assert_eq!(info.reserved.len(), 2);
    assert_eq!(info.devices.uart.unwrap().0.start, PhysAddr(0x1000_0000));
    assert!(info.devices.finisher.is_some());
    assert_ne!(info.rng_seed, 0);
    let free = info.free_ranges();
    for r in &free {
        assert!(
            info.unavailable().all(|u| !u.overlaps(r)),
            "{r:?} is not free"
        );
    }
    assert!(free.windows(2).all(|w| w[0].end <= w[1].start));
}

#[test]
fn every_truncation_is_an_error_or_a_consistent_machine() {
    let blob = tree(ram_128m, two_harts);
    for len in 0..blob.len() {
        // A shorter buffer is refused by the header check, never read past its end.
        assert!(
            parse(&blob[..len]).is_err(),
            "truncated to {len} and accepted"
        );
    }
}

#[test]
fn overflowing_and_zero_sized_regions_are_dropped() {
    let bad_ram = |dt: &mut Dt| {
        memory_node(dt, "memory@0", &reg64(u64::MAX - 0xfff, 0x2000));
        memory_node(dt, "memory@1", &reg64(RAM, 0));
    };
    assert!(matches!(
        parse(&tree(bad_ram, two_harts)),
        Err(BootError::NoRam)
    ));
    let odd_reg = |dt: &mut Dt| memory_node(dt, "memory@2", &cells(&[0, 0x8000, 0]));
    assert!(matches!(
        parse(&tree(odd_reg, two_harts)),
        Err(BootError::NoRam)
    ));
}

#[test]
fn ram_beyond_the_direct_map_or_without_the_kernel_is_refused() {
    let far = |dt: &mut Dt| memory_node(dt, "memory@0", &reg64(1 << 40, 1 << 30));
    assert!(matches!(
        parse(&tree(far, two_harts)),
        Err(BootError::BeyondDirectMap(_))
    ));
    let small = |dt: &mut Dt| memory_node(dt, "memory@0", &reg64(RAM, 1 << 20));
    assert!(matches!(
        parse(&tree(small, two_harts)),
        Err(BootError::KernelOutsideRam(_))
    ));
}

#[test]
fn too_many_regions_are_refused() {
    let many = |dt: &mut Dt| {
        for i in 0..17u64 {
            memory_node(dt, &format!("memory@{i}"), &reg64(RAM + (i << 27), 1 << 27));
        }
    };
    assert!(matches!(
        parse(&tree(many, two_harts)),
        Err(BootError::TooMany(_))
    ));
}

#[test]
fn overlapping_ram_regions_give_no_frame_twice() {
    let twice = |dt: &mut Dt| {
        memory_node(dt, "memory@80000000", &reg64(RAM, 128 << 20));
        memory_node(dt, "memory@84000000", &reg64(RAM + (64 << 20), 128 << 20));
        memory_node(dt, "memory@80000001", &reg64(RAM, 128 << 20));
    };
    let info = parse(&tree(twice, two_harts)).unwrap();
    let free = info.free_ranges();
    for (i, a) in free.iter().enumerate() {
        for b in &free[i + 1..] {
            assert!(!a.overlaps(b), "{a:?} and {b:?} overlap");
        }
    }
    assert_eq!(info.ram_bytes(), 192 << 20);
}

#[test]
fn hart_ids_out_of_range_or_repeated_are_handled() {
    let big = |dt: &mut Dt| cpu(dt, 4096);
    assert!(matches!(
        parse(&tree(ram_128m, big)),
        Err(BootError::HartIdTooLarge(4096))
    ));
    let repeated = |dt: &mut Dt| {
        for _ in 0..40 {
            cpu(dt, 3);
        }
        cpu(dt, 0);
    };
    let info = parse(&tree(ram_128m, repeated)).unwrap();
    assert_eq!(
        info.harts.as_slice(),
        [0, 3],
        "a repeated hart id counts once"
    );
    let none = |_: &mut Dt| {};
    assert!(matches!(
        parse(&tree(ram_128m, none)),
        Err(BootError::NoHarts)
    ));
}

#[test]
fn a_long_command_line_is_cut_on_a_character_boundary() {
    let mut dt = Dt::default();
    let long = "é".repeat(MAX_BOOTARGS);
    dt.begin("")
        .prop("#address-cells", &cells(&[2]))
        .prop("#size-cells", &cells(&[2]));
    dt.begin("chosen").prop("bootargs", &text(&long)).end();
    ram_128m(&mut dt);
    dt.begin("cpus")
        .prop("#address-cells", &cells(&[1]))
        .prop("#size-cells", &cells(&[0]))
        .prop("timebase-frequency", &cells(&[1]));
    cpu(&mut dt, 0);
    dt.end().end();
    let info = parse(&dt.blob()).unwrap();
    assert_eq!(info.bootargs.len(), MAX_BOOTARGS);
    assert!(info.initrd.is_none());
}

/// Parses whatever `open` accepts, to the end, as the kernel does (the result does not
/// matter; a panic would).
fn read_all(blob: &[u8]) {
    let _ = parse(blob).map(|info| info.free_ranges().len());
}

/// Regression (found by `make fuzz-host FUZZ_TARGETS=devicetree`): the `fdt` crate
/// panics on a malformed tree - a property name that is not UTF-8 was the first. `open`
/// refuses such trees, and no corruption of any single byte, nor any truncation of the
/// structure or strings block, makes the reading panic.
#[test]
fn malformed_blocks_are_refused_never_a_panic() {
    let good = tree(ram_128m, two_harts);
    assert!(parse(&good).is_ok());
    for at in 0..good.len() {
        for value in [0x00, 0x01, 0x02, 0x03, 0x04, 0x09, 0x7f, 0xff] {
            let mut b = good.clone();
            b[at] = value;
            read_all(&b);
        }
    }
    // A property name that is not UTF-8.
    let mut dt = Dt::default();
    dt.begin("").prop("compatible", &text("riscv-virtio"));
    dt.prop("\u{7f}", &cells(&[1])).end();
    let mut b = dt.blob();
    let name = b.len() - 2;
    b[name] = 0xff;
    assert!(matches!(parse(&b), Err(BootError::Malformed(_))));
    // A cell count shorter than a cell, a NOP token, a second root, a property after a
    // child node, an unterminated node.
    let mut dt = Dt::default();
    dt.begin("").prop("#address-cells", &[0, 2]).end();
    assert!(matches!(parse(&dt.blob()), Err(BootError::Malformed(_))));
    let mut dt = Dt::default();
    dt.begin("");
    dt.structure.extend(cells(&[4]));
    dt.end();
    assert!(matches!(parse(&dt.blob()), Err(BootError::Malformed(_))));
    let mut dt = Dt::default();
    dt.begin("").end().begin("").end();
    assert!(matches!(parse(&dt.blob()), Err(BootError::Malformed(_))));
    let mut dt = Dt::default();
    dt.begin("")
        .begin("cpus")
        .end()
        .prop("model", &text("x"))
        .end();
    assert!(matches!(parse(&dt.blob()), Err(BootError::Malformed(_))));
    let mut dt = Dt::default();
    dt.begin("").begin("cpus");
    assert!(matches!(parse(&dt.blob()), Err(BootError::Malformed(_))));
}
