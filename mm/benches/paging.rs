//! Side-by-side benchmark: pagoda's Sv39 `PageTable` against `page_table_multiarch`'s
//! `PageTable64` with the Sv39 layout, both over the same simulated physical memory.
//!
//! `page_table_multiarch::riscv::Sv39PageTable` (and `page_table_entry`'s `Rv64PTE`) are
//! compiled only for RISC-V targets, so on the host this benchmark instantiates the same
//! generic `PageTable64` that `Sv39PageTable` names, with metadata equal to
//! `Sv39MetaData` (3 levels, 56-bit PA, 39-bit VA) and an entry type with the Sv39 bit
//! layout (the encoding `Rv64PTE` uses). The table code that runs is theirs.
//!
//! Workloads (fixed, deterministic): 1 GiB of virtual space mapped with 4 KiB pages and
//! with 2 MiB pages; map one leaf at a time and as one range; translate every 4 KiB page
//! in order and 262144 pages in a fixed pseudo-random order; unmap the whole range.
//! Each measurement is the median of several rounds. Run with
//! `cargo bench -p pagoda-mm --bench paging`.

#[path = "../tests/paging_sim/mod.rs"]
mod paging_sim;

use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::LazyLock;
use std::time::Instant;

use memory_addr::{PhysAddr as TheirPhys, VirtAddr as TheirVirt};
use page_table_multiarch::{
    GenericPTE, MappingFlags, PageSize as TheirSize, PageTable64, PagingHandler, PagingMetaData,
};
use paging_sim::{RecordingTlb, SimMemory};
use pagoda_mm::addr::{PAGE_SIZE, PhysAddr, VirtAddr};
use pagoda_mm::layout::GIGAPAGE_SIZE;
use pagoda_mm::paging::{PageSize, PageTable, PagingMemory, PteFlags, TablePage};
use pagoda_mm::tlb::{AsidAllocator, AsidContext, FlushBatch, FlushTarget};

/// The one simulated memory both tables live in (without the tests' check that every
/// freed page is zero, which would read each page the timed unmaps free).
static SIM: LazyLock<SimMemory> = LazyLock::new(|| {
    let mut sim = SimMemory::new(8192);
    sim.check_zero = false;
    sim
});

/// Where the benchmarked range starts (1 GiB aligned, user half).
const VA: usize = 4 * GIGAPAGE_SIZE;
/// Bytes mapped.
const LEN: usize = GIGAPAGE_SIZE;
/// Physical base of the mapped frames (fake addresses: only the tables are real memory).
const PA: usize = 0x1_0000_0000;
/// Rounds per measurement (the median is reported).
const ROUNDS: usize = 7;
/// Random translations per round.
const RANDOM_LOOKUPS: usize = 1 << 18;

// ---- pagoda over the simulated memory ----

#[derive(Clone, Copy)]
struct OurMemory;

// SAFETY: forwards to the simulated memory, which upholds the contract.
unsafe impl PagingMemory for OurMemory {
    #[inline]
    fn alloc_table(&self) -> Option<PhysAddr> {
        SIM.alloc_table()
    }

    #[inline]
    unsafe fn free_table(&self, pa: PhysAddr) {
        // SAFETY: the caller upholds the contract.
        unsafe { SIM.free_table(pa) }
    }

    #[inline]
    fn table_ptr(&self, pa: PhysAddr) -> NonNull<TablePage> {
        SIM.table_ptr(pa)
    }
}

// ---- page_table_multiarch over the same memory ----

struct TheirMemory;

impl PagingHandler for TheirMemory {
    fn alloc_frames(num: usize, _align: usize) -> Option<TheirPhys> {
        assert_eq!(num, 1, "page tables ask for single frames");
        SIM.alloc_table().map(|pa| TheirPhys::from(pa.0))
    }

    fn dealloc_frames(paddr: TheirPhys, _num: usize) {
        // page_table_multiarch frees tables with their entries in place, and the shared
        // memory takes back only zeroed pages (`PagingMemory`'s contract): zeroed here.
        // Their tables are freed only when a table is dropped, outside the timed phases.
        let pa = PhysAddr(paddr.as_usize());
        // SAFETY: a table page page_table_multiarch allocated and is done with.
        unsafe { SIM.table_ptr(pa).as_ptr().write_bytes(0, 1) };
        // SAFETY: as above; the page is now all zero.
        unsafe { SIM.free_table(pa) }
    }

    #[inline]
    fn phys_to_virt(paddr: TheirPhys) -> TheirVirt {
        TheirVirt::from(SIM.table_ptr(PhysAddr(paddr.as_usize())).as_ptr() as usize)
    }
}

/// Sv39 metadata, equal to `page_table_multiarch::riscv::Sv39MetaData` (whose TLB flush
/// is compiled out on the host anyway).
struct Sv39;

impl PagingMetaData for Sv39 {
    const LEVELS: usize = 3;
    const PA_MAX_BITS: usize = 56;
    const VA_MAX_BITS: usize = 39;
    type VirtAddr = TheirVirt;

    fn flush_tlb(_vaddr: Option<TheirVirt>) {}
}

/// An Sv39 entry with the bit layout of `page_table_entry::riscv::Rv64PTE`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
struct Sv39Pte(u64);

const PPN_FIELD: u64 = ((1 << 44) - 1) << 10;
const PERMS: [(MappingFlags, PteFlags); 4] = [
    (MappingFlags::READ, PteFlags::R),
    (MappingFlags::WRITE, PteFlags::W),
    (MappingFlags::EXECUTE, PteFlags::X),
    (MappingFlags::USER, PteFlags::U),
];

fn hw_flags(flags: MappingFlags) -> u64 {
    if flags.is_empty() {
        return 0;
    }
    let mut bits = PteFlags::V | PteFlags::A | PteFlags::D;
    for (generic, hw) in PERMS {
        if flags.contains(generic) {
            bits |= hw;
        }
    }
    bits.bits()
}

impl GenericPTE for Sv39Pte {
    fn new_page(paddr: TheirPhys, flags: MappingFlags, _is_huge: bool) -> Self {
        Self(hw_flags(flags) | ((paddr.as_usize() as u64 >> 2) & PPN_FIELD))
    }
    fn new_table(paddr: TheirPhys) -> Self {
        Self(PteFlags::V.bits() | ((paddr.as_usize() as u64 >> 2) & PPN_FIELD))
    }
    fn paddr(&self) -> TheirPhys {
        TheirPhys::from(((self.0 & PPN_FIELD) << 2) as usize)
    }
    fn flags(&self) -> MappingFlags {
        let hw = PteFlags::from_bits_truncate(self.0);
        let mut flags = MappingFlags::empty();
        if hw.contains(PteFlags::V) {
            for (generic, bit) in PERMS {
                if hw.contains(bit) {
                    flags |= generic;
                }
            }
        }
        flags
    }
    fn set_paddr(&mut self, paddr: TheirPhys) {
        self.0 = (self.0 & !PPN_FIELD) | ((paddr.as_usize() as u64 >> 2) & PPN_FIELD);
    }
    fn set_flags(&mut self, flags: MappingFlags, _is_huge: bool) {
        self.0 = (self.0 & PPN_FIELD) | hw_flags(flags);
    }
    fn bits(self) -> usize {
        self.0 as usize
    }
    fn is_unused(&self) -> bool {
        self.0 == 0
    }
    fn is_present(&self) -> bool {
        self.0 & PteFlags::V.bits() != 0
    }
    fn is_huge(&self) -> bool {
        self.0 & (PteFlags::R | PteFlags::X).bits() != 0
    }
    fn clear(&mut self) {
        self.0 = 0;
    }
}

type Theirs = PageTable64<Sv39, Sv39Pte, TheirMemory>;

// ---- the workloads ----

/// xorshift64: a fixed pseudo-random sequence.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    MapLeaves,
    MapRange,
    TranslateSeq,
    TranslateRandom,
    UnmapRange,
}

const OPS: [(Op, &str); 5] = [
    (Op::MapLeaves, "map (one leaf per call)"),
    (Op::MapRange, "map (one range)"),
    (Op::TranslateSeq, "translate sequential"),
    (Op::TranslateRandom, "translate random"),
    (Op::UnmapRange, "unmap (one range)"),
];

/// One page-table implementation under test.
trait Subject {
    /// A fresh, empty table.
    fn new() -> Self;
    /// Maps the range one leaf of `size` at a time.
    fn map_leaves(&mut self, size: PageSize, pa: usize);
    /// Maps the range with one range call (leaves of `size`, given how `pa` is aligned).
    fn map_range(&mut self, size: PageSize, pa: usize);
    /// The physical address `va` translates to.
    fn translate(&self, va: usize) -> usize;
    /// Unmaps the whole range.
    fn unmap_range(&mut self);
}

/// pagoda's table, with the flush target and recorder its unmap needs.
struct Ours {
    table: PageTable<OurMemory>,
    tlb: &'static RecordingTlb,
    ctx: &'static AsidContext,
}

/// V A D set, as page_table_multiarch writes every leaf (so an unmap need not swap
/// atomically to catch a concurrent D update).
const OUR_FLAGS: PteFlags = PteFlags::R
    .union(PteFlags::W)
    .union(PteFlags::A)
    .union(PteFlags::D);

static OUR_TLB: LazyLock<RecordingTlb> = LazyLock::new(|| RecordingTlb::new(0));
static OUR_SPACE: LazyLock<AsidContext> = LazyLock::new(|| {
    let ctx = AsidContext::new();
    AsidAllocator::new(16, 1).asid_for(&ctx, 0);
    ctx
});

impl Subject for Ours {
    fn new() -> Self {
        Self {
            table: PageTable::new(OurMemory).expect("root"),
            tlb: &OUR_TLB,
            ctx: &OUR_SPACE,
        }
    }
    fn map_leaves(&mut self, size: PageSize, pa: usize) {
        for off in (0..LEN).step_by(size.bytes()) {
            let (va, pa) = (VirtAddr(VA + off), PhysAddr(pa + off));
            self.table.map(va, pa, size, OUR_FLAGS).expect("map");
        }
    }
    fn map_range(&mut self, _size: PageSize, pa: usize) {
        let va = VirtAddr(VA);
        self.table
            .map_range(va, PhysAddr(pa), LEN, OUR_FLAGS)
            .expect("map_range");
    }
    #[inline]
    fn translate(&self, va: usize) -> usize {
        self.table.translate(VirtAddr(va)).expect("mapped").0.0
    }
    fn unmap_range(&mut self) {
        let mut batch = FlushBatch::new(self.tlb, FlushTarget::Space(self.ctx));
        let release = |frame| {
            black_box(frame);
        };
        self.table
            .unmap_range(VirtAddr(VA), LEN, &mut batch, release)
            .expect("unmap");
    }
}

impl Subject for Theirs {
    fn new() -> Self {
        Theirs::try_new().expect("root")
    }
    fn map_leaves(&mut self, size: PageSize, pa: usize) {
        let mut cursor = self.cursor();
        for off in (0..LEN).step_by(size.bytes()) {
            let (va, pa) = (TheirVirt::from(VA + off), TheirPhys::from(pa + off));
            cursor
                .map(va, pa, their_size(size), THEIR_FLAGS)
                .expect("map");
        }
    }
    fn map_range(&mut self, size: PageSize, pa: usize) {
        let base = TheirPhys::from(pa);
        let target = |va: TheirVirt| base + (va.as_usize() - VA);
        let huge = size != PageSize::Size4K;
        let mut cursor = self.cursor();
        cursor
            .map_region(TheirVirt::from(VA), target, LEN, THEIR_FLAGS, huge)
            .expect("map_region");
    }
    #[inline]
    fn translate(&self, va: usize) -> usize {
        self.query(TheirVirt::from(va))
            .expect("mapped")
            .0
            .as_usize()
    }
    fn unmap_range(&mut self) {
        self.cursor()
            .unmap_region(TheirVirt::from(VA), LEN)
            .expect("unmap");
    }
}

const THEIR_FLAGS: MappingFlags = MappingFlags::READ.union(MappingFlags::WRITE);

fn their_size(size: PageSize) -> TheirSize {
    match size {
        PageSize::Size4K => TheirSize::Size4K,
        PageSize::Size2M => TheirSize::Size2M,
        PageSize::Size1G => TheirSize::Size1G,
    }
}

/// Nanoseconds per operation of one round, for each entry of [`OPS`].
///
/// The map and unmap phases are repeated until they have handled as many leaves as a
/// 4 KiB round (so 2 MiB figures are not single microsecond-long samples).
fn round<S: Subject>(size: PageSize, random: &[usize]) -> [f64; OPS.len()] {
    let leaves = LEN / size.bytes();
    let pages = LEN / PAGE_SIZE;
    let reps = pages / leaves;
    let pa = pa_base(size);
    let mut total = [0.0; OPS.len()];
    let mut table = S::new();
    for _ in 0..reps {
        total[0] += timed(leaves, || table.map_leaves(size, pa));
        total[4] += timed(leaves, || table.unmap_range());
        total[1] += timed(leaves, || table.map_range(size, pa));
        total[4] += timed(leaves, || table.unmap_range());
    }
    table.map_range(size, pa);
    total[2] = timed(pages, || {
        let sum: usize = (0..pages)
            .map(|i| table.translate(VA + i * PAGE_SIZE))
            .sum();
        black_box(sum);
    });
    total[3] = timed(random.len(), || {
        let sum: usize = random.iter().map(|&va| table.translate(va)).sum();
        black_box(sum);
    });
    table.unmap_range();
    let reps = reps as f64;
    [
        total[0] / reps,
        total[1] / reps,
        total[2],
        total[3],
        total[4] / (2.0 * reps),
    ]
}

/// Physical base for the frames: aligned to `size` but not to the next larger leaf, so
/// that a range mapping uses exactly `size` leaves.
fn pa_base(size: PageSize) -> usize {
    PA + size.bytes()
}

fn timed(ops: usize, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let random: Vec<usize> = (0..RANDOM_LOOKUPS)
        .map(|_| VA + (rng.next() as usize % (LEN / PAGE_SIZE)) * PAGE_SIZE)
        .collect();
    println!(
        "Sv39 page tables over 1 GiB, median of {ROUNDS} rounds; ratio = pagoda / page_table_multiarch"
    );
    println!("| leaves | operation | pagoda ns/op | page_table_multiarch ns/op | ratio |");
    println!("|---|---|---:|---:|---:|");
    for (size, label) in [(PageSize::Size4K, "4 KiB"), (PageSize::Size2M, "2 MiB")] {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..ROUNDS {
            ours.push(round::<Ours>(size, &random));
            theirs.push(round::<Theirs>(size, &random));
        }
        for (i, (op, name)) in OPS.iter().enumerate() {
            let a = median(ours.iter().map(|r| r[i]).collect());
            let b = median(theirs.iter().map(|r| r[i]).collect());
            let unit = if matches!(op, Op::TranslateSeq | Op::TranslateRandom) {
                "lookup"
            } else {
                "leaf"
            };
            println!(
                "| {label} | {name} (per {unit}) | {a:.2} | {b:.2} | {:.2}x |",
                a / b
            );
        }
    }
    let flushes = OUR_TLB.take().len();
    assert_eq!(SIM.live_tables(), 0, "every table page returned");
    println!(
        "pagoda issued {flushes} batched TLB flush requests in all; page_table_multiarch none (host build)"
    );
}
