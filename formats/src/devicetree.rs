//! What the kernel learns from a flattened device tree, parsed once at boot.
//!
//! Nothing about the machine is assumed: RAM regions, reserved ranges, devices, harts,
//! the timebase and the command line all come from the tree QEMU (or any firmware)
//! passes in `a1`. Parsing uses the `fdt` crate; the result is a plain value with fixed
//! capacities (the kernel heap does not exist yet).

use arrayvec::{ArrayString, ArrayVec};
use fdt::Fdt;
use pagoda_mm::addr::PhysAddr;
use pagoda_mm::layout::{DIRECT_MAP_SIZE, MAX_HARTS};

/// Most RAM regions the kernel records.
pub const MAX_RAM_REGIONS: usize = 16;
/// Most reserved ranges (memreserve entries and `/reserved-memory` children).
pub const MAX_RESERVED: usize = 32;
/// Most virtio-mmio slots recorded.
pub const MAX_VIRTIO: usize = 16;
/// Longest kernel command line kept.
pub const MAX_BOOTARGS: usize = 512;

/// A physical range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: PhysAddr,
    /// One past the last byte.
    pub end: PhysAddr,
}

impl Region {
    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.end.0 - self.start.0
    }

    /// Whether the two ranges share a byte.
    pub fn overlaps(&self, other: &Region) -> bool {
        self.start < other.end && other.start < self.end
    }

    fn from_reg(start: usize, size: usize) -> Option<Region> {
        let end = start.checked_add(size)?;
        (size > 0).then_some(Region {
            start: PhysAddr(start),
            end: PhysAddr(end),
        })
    }
}

/// Bytes of a version-17 flattened device tree header, and its magic.
const FDT_HEADER_SIZE: usize = 40;
const FDT_MAGIC: u32 = 0xd00d_feed;
/// Structure-block tokens.
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_END: u32 = 9;
/// Deepest node nesting accepted (real trees nest 4 or 5 deep).
const MAX_DEPTH: usize = 64;

/// Opens the flattened device tree in `blob` after checking every byte the `fdt` crate
/// will read: it trusts the tree and panics on a malformed one (a name that is not
/// UTF-8, a string offset out of range, a truncated structure block, a token out of
/// place, a `#address-cells` shorter than a cell; found by `make fuzz-host
/// FUZZ_TARGETS=devicetree`). Checked here: the header and its blocks inside the blob;
/// the memory-reservation list ends inside it; the structure block is one root node of
/// properties and child nodes, properly nested and followed by `FDT_END`, with
/// NUL-terminated UTF-8 node names and property names, property values inside the block
/// and `#address-cells`/`#size-cells` values of at least one cell. `FDT_NOP` tokens are
/// refused: the crate skips them only in some places (a tree with them never booted).
pub fn open(blob: &[u8]) -> Result<Fdt<'_>, BootError> {
    let bad = BootError::Malformed;
    let be = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(
            blob.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let field = |i: usize| be(4 * i).map(|v| v as usize).ok_or(bad("truncated header"));
    if blob.len() < FDT_HEADER_SIZE || field(0)? != FDT_MAGIC as usize {
        return Err(bad("no header"));
    }
    let total = field(1)?;
    let (off_struct, off_strings, off_rsv) = (field(2)?, field(3)?, field(4)?);
    let (size_strings, size_struct) = (field(8)?, field(9)?);
    if total > blob.len() || total < FDT_HEADER_SIZE {
        return Err(bad("total size"));
    }
    let block = |off: usize, size: usize| {
        off.checked_add(size)
            .filter(|&end| end <= total)
            .map(|end| &blob[off..end])
            .ok_or(bad("a block outside the tree"))
    };
    let structure = block(off_struct, size_struct)?;
    let strings = block(off_strings, size_strings)?;
    // Memory reservations: 16-byte entries up to one of zeros.
    let mut at = off_rsv;
    loop {
        let entry = at
            .checked_add(16)
            .filter(|&end| end <= total)
            .map(|end| &blob[at..end])
            .ok_or(bad("unterminated memory reservations"))?;
        if entry.iter().all(|&b| b == 0) {
            break;
        }
        at += 16;
    }
    // A NUL-terminated UTF-8 string at the start of `bytes`; its length with the NUL.
    let cstr = |bytes: &[u8]| -> Result<(usize, bool), BootError> {
        let len = bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(bad("unterminated name"))?;
        let name = core::str::from_utf8(&bytes[..len]).map_err(|_| bad("name not UTF-8"))?;
        Ok((len + 1, name == "#address-cells" || name == "#size-cells"))
    };
    let token = |at: usize| -> Result<u32, BootError> {
        let b = structure
            .get(at..at + 4)
            .ok_or(bad("truncated structure block"))?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut at = 0;
    let mut depth = 0usize;
    // Within a node: properties first, then child nodes (the order the crate reads).
    let mut in_children = false;
    loop {
        match token(at)? {
            FDT_BEGIN_NODE => {
                if depth == 0 && at != 0 {
                    return Err(bad("a second root node"));
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(bad("nodes nested too deep"));
                }
                let (len, _) = cstr(&structure[at + 4..])?;
                at = (at + 4 + len).next_multiple_of(4);
                in_children = false;
            }
            FDT_PROP => {
                if depth == 0 || in_children {
                    return Err(bad("a property out of place"));
                }
                let len = token(at + 4)? as usize;
                let name = strings
                    .get(token(at + 8)? as usize..)
                    .ok_or(bad("a property name outside the strings"))?;
                let (_, cells) = cstr(name)?;
                if cells && len < 4 {
                    return Err(bad("a cell count shorter than a cell"));
                }
                let end = (at + 12)
                    .checked_add(len)
                    .filter(|&e| e <= structure.len())
                    .ok_or(bad("a property value outside the block"))?;
                at = end.next_multiple_of(4);
            }
            FDT_END_NODE => {
                depth = depth
                    .checked_sub(1)
                    .ok_or(bad("an unmatched end of node"))?;
                at += 4;
                in_children = true;
            }
            FDT_END if depth == 0 && at != 0 => {
                return Fdt::new(blob).map_err(BootError::BadDeviceTree);
            }
            _ => return Err(bad("an unexpected token")),
        }
    }
}

/// What was wrong with the device tree, or with the machine it describes.
#[derive(Debug)]
pub enum BootError {
    /// The header is not a valid flattened device tree.
    BadDeviceTree(fdt::FdtError),
    /// The tree's blocks are malformed (what [`open`] found wrong).
    Malformed(&'static str),
    /// No `memory` node with a usable `reg`.
    NoRam,
    /// More regions of a kind than the kernel keeps.
    TooMany(&'static str),
    /// A region lies beyond what the direct map covers.
    BeyondDirectMap(Region),
    /// The kernel image is not inside any RAM region.
    KernelOutsideRam(Region),
    /// No CPU node.
    NoHarts,
    /// A CPU's hart id is beyond the kernel's limit.
    HartIdTooLarge(usize),
    /// `timebase-frequency` is missing.
    NoTimebase,
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootError::BadDeviceTree(e) => write!(f, "malformed device tree: {e:?}"),
            BootError::Malformed(what) => write!(f, "malformed device tree: {what}"),
            BootError::NoRam => write!(f, "the device tree describes no RAM"),
            BootError::TooMany(what) => write!(f, "too many {what} in the device tree"),
            BootError::BeyondDirectMap(r) => write!(
                f,
                "region {}..{} lies beyond the {} GiB direct map",
                r.start,
                r.end,
                DIRECT_MAP_SIZE >> 30
            ),
            BootError::KernelOutsideRam(r) => {
                write!(
                    f,
                    "the kernel image {}..{} is not inside RAM (RAM too small?)",
                    r.start, r.end
                )
            }
            BootError::NoHarts => write!(f, "the device tree lists no harts"),
            BootError::HartIdTooLarge(id) => {
                write!(
                    f,
                    "hart id {id} is beyond the kernel's limit of {MAX_HARTS}"
                )
            }
            BootError::NoTimebase => write!(f, "no timebase-frequency in /cpus"),
        }
    }
}

/// A virtio-mmio slot: its registers and its interrupt line at the PLIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioSlot {
    /// The slot's registers.
    pub region: Region,
    /// Its interrupt source number at the platform-level interrupt controller (0: none).
    pub irq: u32,
}

/// The platform-level interrupt controller (`riscv,plic0`): its registers and which of
/// its contexts raise the supervisor external interrupt of which hart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plic {
    /// Its registers.
    pub region: Region,
    /// `(hart id, context)` for every context wired to a hart's supervisor external
    /// interrupt (cause 9), as `interrupts-extended` lists them.
    pub supervisor_contexts: ArrayVec<(usize, u32), MAX_HARTS>,
}

/// The interrupt number of a hart's supervisor external interrupt (`scause` 9), as a
/// PLIC's `interrupts-extended` names it.
const IRQ_S_EXTERNAL: u32 = 9;

impl Plic {
    /// Reads a PLIC node: its registers and, through `interrupts-extended`, the contexts
    /// that reach a hart in supervisor mode (each entry is a pair: the phandle of a hart's
    /// `riscv,cpu-intc` node and the interrupt it raises there).
    fn from_node(fdt: &Fdt<'_>, region: Region, node: &fdt::node::FdtNode<'_, '_>) -> Plic {
        let mut plic = Plic {
            region,
            supervisor_contexts: ArrayVec::new(),
        };
        let Some(ext) = node.property("interrupts-extended") else {
            return plic;
        };
        let cells = ext
            .value
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        let pairs = cells.clone().step_by(2).zip(cells.skip(1).step_by(2));
        for (context, (phandle, irq)) in (0u32..).zip(pairs) {
            if irq == IRQ_S_EXTERNAL
                && let Some(hart) = hart_of_intc(fdt, phandle)
            {
                let _ = plic.supervisor_contexts.try_push((hart, context));
            }
        }
        plic
    }
}

/// The hart id of the CPU whose interrupt-controller child has `phandle`.
fn hart_of_intc(fdt: &Fdt<'_>, phandle: u32) -> Option<usize> {
    let cpus = fdt.find_node("/cpus")?;
    let wanted = Some(phandle as usize);
    cpus.children()
        .find(|cpu| {
            cpu.children()
                .any(|c| c.property("phandle").and_then(|p| p.as_usize()) == wanted)
        })?
        .reg()?
        .next()
        .map(|r| r.starting_address as usize)
}

/// The devices the kernel drives, found by their `compatible` strings.
#[derive(Debug, Default)]
pub struct Devices {
    /// The ns16550a UART: registers and register shift.
    pub uart: Option<(Region, u32)>,
    /// The `sifive,test` finisher (power off with an exit status).
    pub finisher: Option<Region>,
    /// The `google,goldfish-rtc` real-time clock.
    pub rtc: Option<Region>,
    /// virtio-mmio device slots, sorted by address.
    pub virtio: ArrayVec<VirtioSlot, MAX_VIRTIO>,
    /// The interrupt controller of the external interrupts.
    pub plic: Option<Plic>,
}

impl Devices {
    /// Scans the tree for the devices pagoda drives. Done before anything else, so that
    /// even a boot error is reported on the UART and ends with a failure status.
    pub fn scan(fdt: &Fdt<'_>) -> Result<Devices, BootError> {
        let mut d = Devices::default();
        for node in fdt.all_nodes() {
            let Some(compat) = node.compatible() else {
                continue;
            };
            let first_reg = || {
                node.reg()
                    .and_then(|mut r| r.next())
                    .and_then(|r| Region::from_reg(r.starting_address as usize, r.size?))
            };
            if compat.all().any(|c| c == "ns16550a") && d.uart.is_none() {
                let shift = node
                    .property("reg-shift")
                    .and_then(|p| p.as_usize())
                    .unwrap_or(0);
                d.uart = first_reg().map(|r| (r, shift as u32));
            } else if compat
                .all()
                .any(|c| c == "sifive,test0" || c == "sifive,test1")
            {
                d.finisher = first_reg();
            } else if compat.all().any(|c| c == "google,goldfish-rtc") {
                d.rtc = first_reg();
            } else if compat.all().any(|c| c == "virtio,mmio")
                && let Some(region) = first_reg()
            {
                let irq = node
                    .property("interrupts")
                    .and_then(|p| p.as_usize())
                    .and_then(|i| u32::try_from(i).ok())
                    .unwrap_or(0);
                d.virtio
                    .try_push(VirtioSlot { region, irq })
                    .map_err(|_| BootError::TooMany("virtio slots"))?;
            } else if compat
                .all()
                .any(|c| c == "riscv,plic0" || c == "sifive,plic-1.0.0")
                && d.plic.is_none()
                && let Some(region) = first_reg()
            {
                d.plic = Some(Plic::from_node(fdt, region, &node));
            }
        }
        d.virtio.sort_unstable_by_key(|s| s.region.start);
        Ok(d)
    }
}

/// The machine, as the device tree describes it.
#[derive(Debug)]
pub struct BootInfo {
    /// Where the device tree itself lies (it stays reserved while `BootInfo` borrows it).
    pub fdt: Region,
    /// RAM regions, sorted by address.
    pub ram: ArrayVec<Region, MAX_RAM_REGIONS>,
    /// Reserved ranges (firmware), sorted by address.
    pub reserved: ArrayVec<Region, MAX_RESERVED>,
    /// The kernel image's physical extent.
    pub kernel: Region,
    /// The initramfs, if the firmware passed one (`/chosen/linux,initrd-*`).
    pub initrd: Option<Region>,
    /// Devices.
    pub devices: Devices,
    /// Hart ids of the enabled CPUs, sorted.
    pub harts: ArrayVec<usize, MAX_HARTS>,
    /// `timebase-frequency` in Hz.
    pub timebase_hz: u64,
    /// `/chosen/bootargs`.
    pub bootargs: ArrayString<MAX_BOOTARGS>,
    /// Entropy from `/chosen/rng-seed` folded into one word (0 if the firmware gave none).
    pub rng_seed: u64,
}

impl BootInfo {
    /// Reads the machine from the device tree `fdt` (found at `dtb`), given the kernel
    /// image's physical extent and the devices [`Devices::scan`] found.
    pub fn parse(
        fdt: &Fdt<'_>,
        dtb: PhysAddr,
        kernel: Region,
        devices: Devices,
    ) -> Result<BootInfo, BootError> {
        let mut info = BootInfo {
            fdt: Region {
                start: dtb,
                end: PhysAddr(dtb.0.saturating_add(fdt.total_size())),
            },
            ram: ArrayVec::new(),
            reserved: ArrayVec::new(),
            kernel,
            initrd: None,
            devices,
            harts: ArrayVec::new(),
            timebase_hz: 0,
            bootargs: ArrayString::new(),
            rng_seed: 0,
        };

        for node in fdt.all_nodes() {
            let is_memory = node
                .property("device_type")
                .and_then(|p| p.as_str())
                .is_some_and(|t| t == "memory");
            if is_memory {
                for reg in node.reg().into_iter().flatten() {
                    let Some(size) = reg.size else { continue };
                    if let Some(r) = Region::from_reg(reg.starting_address as usize, size) {
                        info.ram
                            .try_push(r)
                            .map_err(|_| BootError::TooMany("RAM regions"))?;
                    }
                }
            }
        }
        if info.ram.is_empty() {
            return Err(BootError::NoRam);
        }
        info.ram.sort_unstable_by_key(|r| r.start);
        info.ram = merge_overlapping(&info.ram);
        for r in &info.ram {
            if r.end.0 > DIRECT_MAP_SIZE {
                return Err(BootError::BeyondDirectMap(*r));
            }
        }
        if !info
            .ram
            .iter()
            .any(|r| r.start <= kernel.start && kernel.end <= r.end)
        {
            return Err(BootError::KernelOutsideRam(kernel));
        }

        for m in fdt.memory_reservations() {
            if let Some(r) = Region::from_reg(m.address() as usize, m.size()) {
                info.reserved
                    .try_push(r)
                    .map_err(|_| BootError::TooMany("reserved ranges"))?;
            }
        }
        if let Some(rm) = fdt.find_node("/reserved-memory") {
            for child in rm.children() {
                for reg in child.reg().into_iter().flatten() {
                    let Some(size) = reg.size else { continue };
                    if let Some(r) = Region::from_reg(reg.starting_address as usize, size) {
                        info.reserved
                            .try_push(r)
                            .map_err(|_| BootError::TooMany("reserved ranges"))?;
                    }
                }
            }
        }
        info.reserved.sort_unstable_by_key(|r| r.start);

        if let Some(chosen) = fdt.find_node("/chosen") {
            if let Some(args) = chosen.property("bootargs").and_then(|p| p.as_str()) {
                let end = args.len().min(MAX_BOOTARGS);
                // Truncate on a character boundary.
                let end = (0..=end)
                    .rev()
                    .find(|&i| args.is_char_boundary(i))
                    .unwrap_or(0);
                info.bootargs.push_str(&args[..end]);
            }
            let start = chosen
                .property("linux,initrd-start")
                .and_then(|p| p.as_usize());
            let end = chosen
                .property("linux,initrd-end")
                .and_then(|p| p.as_usize());
            if let (Some(s), Some(e)) = (start, end) {
                info.initrd = e.checked_sub(s).and_then(|len| Region::from_reg(s, len));
            }
            if let Some(seed) = chosen.property("rng-seed") {
                info.rng_seed = seed.value.chunks(8).fold(0u64, |acc, c| {
                    let mut word = [0u8; 8];
                    word[..c.len()].copy_from_slice(c);
                    acc.rotate_left(17) ^ u64::from_le_bytes(word)
                });
            }
        }

        let cpus = fdt.find_node("/cpus").ok_or(BootError::NoHarts)?;
        let mut timebase = cpus
            .property("timebase-frequency")
            .and_then(|p| p.as_usize());
        for cpu in cpus.children() {
            let is_cpu = cpu.property("device_type").and_then(|p| p.as_str()) == Some("cpu");
            let enabled = cpu
                .property("status")
                .and_then(|p| p.as_str())
                .is_none_or(|s| s == "okay" || s == "ok");
            if !is_cpu || !enabled {
                continue;
            }
            let Some(id) = cpu
                .reg()
                .and_then(|mut r| r.next())
                .map(|r| r.starting_address as usize)
            else {
                continue;
            };
            if id >= MAX_HARTS {
                return Err(BootError::HartIdTooLarge(id));
            }
            // A hart listed twice is one hart (as Linux skips a repeated `reg`).
            if info.harts.contains(&id) {
                continue;
            }
            info.harts
                .try_push(id)
                .map_err(|_| BootError::TooMany("harts"))?;
            timebase = timebase.or(cpu
                .property("timebase-frequency")
                .and_then(|p| p.as_usize()));
        }
        if info.harts.is_empty() {
            return Err(BootError::NoHarts);
        }
        info.harts.sort_unstable();
        info.timebase_hz = timebase.ok_or(BootError::NoTimebase)? as u64;
        Ok(info)
    }

    /// Total bytes of RAM.
    pub fn ram_bytes(&self) -> usize {
        self.ram.iter().map(Region::size).sum()
    }

    /// Ranges of RAM the kernel may not hand out: firmware reservations, the kernel
    /// image, the device tree and the initramfs.
    pub fn unavailable(&self) -> impl Iterator<Item = Region> + '_ {
        self.reserved
            .iter()
            .copied()
            .chain([self.kernel, self.fdt])
            .chain(self.initrd)
    }

    /// The words of the command line.
    pub fn args(&self) -> impl Iterator<Item = &str> {
        self.bootargs.split_ascii_whitespace()
    }

    /// The value of `key=value` on the command line, if present.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }
}

/// `ram` (sorted by start) with overlapping regions merged: two `memory` nodes that
/// describe the same bytes must not hand a frame to the allocator twice. Touching
/// regions stay apart, as the tree lists them.
fn merge_overlapping(ram: &[Region]) -> ArrayVec<Region, MAX_RAM_REGIONS> {
    let mut out: ArrayVec<Region, MAX_RAM_REGIONS> = ArrayVec::new();
    for &r in ram {
        match out.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            // At most as many regions as `ram` holds.
            _ => out.push(r),
        }
    }
    out
}

/// Most free ranges [`BootInfo::free_ranges`] returns.
pub const MAX_FREE_RANGES: usize = MAX_RAM_REGIONS + MAX_RESERVED + 3;

impl BootInfo {
    /// RAM minus every unavailable range, page-aligned inward, sorted: what the frame
    /// allocator may manage.
    pub fn free_ranges(&self) -> ArrayVec<Region, MAX_FREE_RANGES> {
        use pagoda_mm::addr::{PAGE_SIZE, align_down, align_up};
        let mut holes: ArrayVec<Region, { MAX_RESERVED + 3 }> = self.unavailable().collect();
        holes.sort_unstable_by_key(|r| r.start);
        let mut out = ArrayVec::new();
        for ram in &self.ram {
            let mut cursor = ram.start.0;
            for hole in holes.iter().chain(core::iter::once(&Region {
                start: ram.end,
                end: ram.end,
            })) {
                if hole.end.0 <= cursor || hole.start.0 >= ram.end.0 && hole.start != ram.end {
                    continue;
                }
                let start = align_up(cursor, PAGE_SIZE).unwrap_or(usize::MAX);
                let end = align_down(hole.start.0.min(ram.end.0), PAGE_SIZE);
                if start < end {
                    // Capacity covers every RAM region split by every hole.
                    let _ = out.try_push(Region {
                        start: PhysAddr(start),
                        end: PhysAddr(end),
                    });
                }
                cursor = cursor.max(hole.end.0);
            }
        }
        out
    }
}
