//! In-kernel tests, selected on the command line with `ktest=all` or
//! `ktest=name,name,...`. Each prints one line the host harness reads:
//! `TEST kernel/<name> PASS` or `TEST kernel/<name> FAIL <reason>`.

use core::sync::atomic::Ordering;

use pagoda_mm::addr::PhysAddr;
use pagoda_mm::layout::{KERNEL_IMAGE_BASE, phys_to_virt};

use crate::boot::BootInfo;

/// What a test needs to know about the running kernel.
pub struct Context<'a> {
    /// The parsed device tree.
    pub info: &'a BootInfo,
    /// Physical load address of the kernel image.
    pub kernel_pa: usize,
    /// ASID bits the hardware implements.
    pub asid_bits: u32,
}

type TestResult = Result<(), &'static str>;

struct KernelTest {
    name: &'static str,
    run: fn(&Context<'_>) -> TestResult,
}

/// Tests that end the boot, run only when named explicitly (never by `all`).
const EXPLICIT: &[(&str, fn())] = &[
    ("panic", deliberate_panic),
    ("stack_overflow", overflow_stack),
];

fn check(cond: bool, why: &'static str) -> TestResult {
    if cond { Ok(()) } else { Err(why) }
}

const TESTS: &[KernelTest] = &[
    KernelTest {
        name: "fdt_ram",
        run: fdt_ram,
    },
    KernelTest {
        name: "fdt_reserved",
        run: fdt_reserved,
    },
    KernelTest {
        name: "fdt_devices",
        run: fdt_devices,
    },
    KernelTest {
        name: "fdt_bootargs",
        run: fdt_bootargs,
    },
    KernelTest {
        name: "free_ranges",
        run: free_ranges,
    },
    KernelTest {
        name: "early_map",
        run: early_map,
    },
    KernelTest {
        name: "trap_breakpoint",
        run: trap_breakpoint,
    },
    KernelTest {
        name: "trap_timer",
        run: trap_timer,
    },
    KernelTest {
        name: "harts_online",
        run: harts_online,
    },
    KernelTest {
        name: "frames_exhaust",
        run: frames_exhaust,
    },
    KernelTest {
        name: "frames_orders",
        run: frames_orders,
    },
    KernelTest {
        name: "heap_churn",
        run: heap_churn,
    },
    KernelTest {
        name: "kspace_wx",
        run: kspace_wx,
    },
    KernelTest {
        name: "kspace_leaves",
        run: kspace_leaves,
    },
    KernelTest {
        name: "kstack_guard",
        run: kstack_guard,
    },
    KernelTest {
        name: "asids",
        run: asids,
    },
    KernelTest {
        name: "map_protect_unmap",
        run: map_protect_unmap,
    },
    KernelTest {
        name: "table_pool",
        run: table_pool,
    },
];

/// Runs the tests `selection` names (`all`, or a comma-separated list); returns
/// (passed, failed). Unknown names count as failures.
pub fn run(selection: &str, ctx: &Context<'_>) -> (usize, usize) {
    let (mut passed, mut failed) = (0, 0);
    for want in selection.split(',') {
        let mut found = false;
        for t in TESTS.iter().filter(|t| want == "all" || want == t.name) {
            found = true;
            match (t.run)(ctx) {
                Ok(()) => {
                    passed += 1;
                    crate::println!("TEST kernel/{} PASS", t.name);
                }
                Err(why) => {
                    failed += 1;
                    crate::println!("TEST kernel/{} FAIL {}", t.name, why);
                }
            }
        }
        if let Some((_, f)) = EXPLICIT.iter().find(|(name, _)| *name == want) {
            f();
        }
        if !found {
            failed += 1;
            crate::println!("TEST kernel/{want} FAIL no such test");
        }
    }
    (passed, failed)
}

/// Checks the panic path: the harness expects the message, the location and exit status 1.
fn deliberate_panic() {
    panic!("deliberate panic requested by ktest=panic");
}

/// Recurses until the kernel stack runs into its guard page; the harness expects the
/// overflow report and exit status 1.
fn overflow_stack() {
    fn deeper(n: usize) -> usize {
        let pad = core::hint::black_box([n as u8; 512]);
        if n == 0 {
            pad[0] as usize
        } else {
            deeper(n - 1) + pad[n % 512] as usize
        }
    }
    let _ = core::hint::black_box(deeper(core::hint::black_box(1 << 20)));
}

fn fdt_ram(ctx: &Context<'_>) -> TestResult {
    let ram = &ctx.info.ram;
    check(!ram.is_empty(), "no RAM")?;
    check(
        ram.windows(2).all(|w| w[0].end <= w[1].start),
        "RAM regions overlap or unsorted",
    )?;
    // Usable RAM is really there: read the first and last word of every free range
    // through the direct map (reserved ranges may be PMP-protected firmware memory).
    for r in &ctx.info.free_ranges() {
        for pa in [r.start.0, r.end.0 - 8] {
            let va = phys_to_virt(PhysAddr(pa)).as_usize() as *const u64;
            // SAFETY: `pa` lies in free RAM, which the boot table direct-maps.
            let _ = unsafe { va.read_volatile() };
        }
    }
    check(
        ram.iter()
            .any(|r| r.start <= ctx.info.kernel.start && ctx.info.kernel.end <= r.end),
        "kernel image outside RAM",
    )
}

fn fdt_reserved(ctx: &Context<'_>) -> TestResult {
    let info = ctx.info;
    check(
        !info.reserved.is_empty(),
        "no reserved range (OpenSBI reserves its own)",
    )?;
    check(
        info.reserved.iter().all(|r| !r.overlaps(&info.kernel)),
        "reserved overlaps kernel",
    )?;
    check(
        info.reserved
            .iter()
            .any(|r| info.ram.iter().any(|m| m.overlaps(r))),
        "no reserved range inside RAM",
    )
}

fn fdt_devices(ctx: &Context<'_>) -> TestResult {
    let info = ctx.info;
    check(info.devices.uart.is_some(), "no ns16550a UART")?;
    check(info.devices.finisher.is_some(), "no sifive,test finisher")?;
    check(!info.devices.virtio.is_empty(), "no virtio-mmio slots")?;
    check(info.timebase_hz > 0, "no timebase")
}

fn fdt_bootargs(ctx: &Context<'_>) -> TestResult {
    check(
        ctx.info.arg("ktest").is_some(),
        "ktest= not seen in /chosen/bootargs",
    )
}

fn free_ranges(ctx: &Context<'_>) -> TestResult {
    let free = ctx.info.free_ranges();
    check(!free.is_empty(), "no free RAM")?;
    for f in &free {
        check(
            f.start.is_page_aligned() && f.end.is_page_aligned(),
            "unaligned free range",
        )?;
        check(
            ctx.info
                .ram
                .iter()
                .any(|r| r.start <= f.start && f.end <= r.end),
            "free outside RAM",
        )?;
        check(
            ctx.info.unavailable().all(|u| !u.overlaps(f)),
            "free overlaps a reserved range",
        )?;
    }
    check(
        free.windows(2).all(|w| w[0].end <= w[1].start),
        "free ranges overlap",
    )
}

/// A word whose kernel-image address and direct-map address must show the same bytes.
static MAP_PROBE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn early_map(ctx: &Context<'_>) -> TestResult {
    let va = &MAP_PROBE as *const _ as usize;
    let pa = va - KERNEL_IMAGE_BASE.as_usize() + ctx.kernel_pa;
    let alias = phys_to_virt(PhysAddr(pa)).as_usize() as *const u64;
    for value in [0x5a5a_0001_u64, 0xa5a5_0002] {
        MAP_PROBE.store(value, Ordering::SeqCst);
        // SAFETY: `alias` is the direct-map address of MAP_PROBE's physical frame.
        let seen = unsafe { alias.read_volatile() };
        check(seen == value, "image and direct map disagree")?;
    }
    Ok(())
}

fn trap_breakpoint(_: &Context<'_>) -> TestResult {
    let before = crate::trap::BREAKPOINTS.load(Ordering::Relaxed);
    crate::arch::breakpoint();
    crate::arch::breakpoint();
    let after = crate::trap::BREAKPOINTS.load(Ordering::Relaxed);
    check(
        after == before + 2,
        "breakpoint traps not counted and resumed",
    )
}

fn trap_timer(_: &Context<'_>) -> TestResult {
    let start = crate::timer::ticks();
    let deadline = crate::timer::now_ns() + 1_000_000_000;
    while crate::timer::ticks() < start + 3 {
        if crate::timer::now_ns() > deadline {
            return Err("fewer than 3 timer interrupts in 1 s");
        }
        crate::arch::wait_for_interrupt();
    }
    Ok(())
}

fn harts_online(ctx: &Context<'_>) -> TestResult {
    check(
        crate::smp::online() == ctx.info.harts.len(),
        "not every hart came online",
    )
}

/// Allocates single frames until none is left, chaining them through their own first
/// word (no heap needed), then frees them all: every counter must be back.
fn frames_exhaust(_: &Context<'_>) -> TestResult {
    use crate::memory::frames::{self, FRAMES};
    use pagoda_mm::frame::FrameUse;
    frames::drain_caches();
    let baseline = frames::stats();
    let mut head = 0usize;
    let mut count = 0usize;
    while let Ok(pfn) = frames::alloc(0, FrameUse::Kernel) {
        let va = phys_to_virt(pfn.addr()).as_usize() as *mut usize;
        // SAFETY: the frame was just allocated to this test and is direct-mapped.
        unsafe { va.write(head) };
        head = va as usize;
        count += 1;
    }
    // `free` counts the frames in hart caches too; one cache's worth may belong to a hart
    // that has not answered the drain request yet when the allocator gives up waiting.
    check(
        count + pagoda_mm::frame::CACHE_CAPACITY >= baseline.free,
        "exhausted before using all free frames",
    )?;
    check(
        frames::alloc(0, FrameUse::Kernel).is_err(),
        "allocation after exhaustion succeeded",
    )?;
    while head != 0 {
        let va = head as *const usize;
        // SAFETY: `head` is a frame of the chain built above, still allocated.
        head = unsafe { va.read() };
        let pa = PhysAddr(va as usize - pagoda_mm::layout::DIRECT_MAP_BASE.as_usize());
        frames::put(pa.pfn());
    }
    frames::drain_caches();
    let after = frames::stats();
    check(
        after.check_no_leaks(&baseline).is_ok(),
        "frame counters not back to baseline",
    )?;
    check(FRAMES.verify().is_ok(), "allocator invariants broken")
}

/// One block of every order that fits: naturally aligned, then all freed.
fn frames_orders(_: &Context<'_>) -> TestResult {
    use crate::memory::frames;
    use pagoda_mm::frame::FrameUse;
    frames::drain_caches();
    let baseline = frames::stats();
    let mut got = [None; 19];
    for (order, slot) in got.iter_mut().enumerate() {
        if let Ok(pfn) = frames::alloc(order, FrameUse::Kernel) {
            if pfn.0 % (1 << order) != 0 {
                return Err("block not naturally aligned");
            }
            *slot = Some(pfn);
        }
    }
    check(
        got[0].is_some() && got[9].is_some(),
        "no 4 KiB or 2 MiB block",
    )?;
    for pfn in got.into_iter().flatten() {
        frames::put(pfn);
    }
    frames::drain_caches();
    check(
        frames::stats().check_no_leaks(&baseline).is_ok(),
        "frame counters not back to baseline",
    )
}

/// Heap objects of every size class and some large ones; everything freed returns.
fn heap_churn(_: &Context<'_>) -> TestResult {
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    let before = crate::memory::heap::stats().live_allocations();
    let mut objs: Vec<Box<[u8]>> = Vec::new();
    for round in 0..4usize {
        for size in [
            1usize, 8, 24, 64, 200, 512, 1000, 3000, 4096, 10_000, 70_000,
        ] {
            let b = alloc::vec![(size + round) as u8; size].into_boxed_slice();
            objs.push(b);
        }
    }
    for b in &objs {
        let expect = b.first().copied();
        check(
            b.iter().all(|&x| Some(x) == expect),
            "heap object corrupted",
        )?;
    }
    drop(objs);
    let after = crate::memory::heap::stats().live_allocations();
    check(after == before, "heap allocations leaked")
}

/// No kernel mapping is writable and executable; text is R+X, rodata R, data R+W.
fn kspace_wx(_: &Context<'_>) -> TestResult {
    use pagoda_mm::layout::KERNEL_HALF_START;
    use pagoda_mm::paging::PteFlags;
    let mut table = crate::memory::kspace::table().lock();
    let text = table.translate(pagoda_mm::addr::VirtAddr(kernel_main_addr()));
    let rodata = table.translate(pagoda_mm::addr::VirtAddr(TESTS.as_ptr() as usize));
    let data = table.translate(pagoda_mm::addr::VirtAddr(&MAP_PROBE as *const _ as usize));
    let flags = |t: Option<(PhysAddr, PteFlags, pagoda_mm::paging::PageSize)>| t.map(|t| t.1);
    let (text, rodata, data) = (flags(text), flags(rodata), flags(data));
    check(
        text.is_some_and(|f| f.contains(PteFlags::X) && !f.contains(PteFlags::W)),
        "text not R+X",
    )?;
    check(
        rodata.is_some_and(|f| !f.intersects(PteFlags::W | PteFlags::X)),
        "rodata not R only",
    )?;
    check(
        data.is_some_and(|f| f.contains(PteFlags::W) && !f.contains(PteFlags::X)),
        "data not R+W",
    )?;
    let mut wx = 0;
    let len = 0usize.wrapping_sub(KERNEL_HALF_START.as_usize());
    let walked = table.for_each_leaf(KERNEL_HALF_START, len, |leaf| {
        let f = leaf.pte().flags();
        if f.contains(PteFlags::W) && f.contains(PteFlags::X) {
            wx += 1;
        }
    });
    check(walked.is_ok(), "cannot walk the kernel half")?;
    check(wx == 0, "a kernel mapping is both writable and executable")
}

fn kernel_main_addr() -> usize {
    kspace_wx as *const () as usize
}

/// The direct map uses huge leaves where RAM alignment allows.
fn kspace_leaves(ctx: &Context<'_>) -> TestResult {
    use pagoda_mm::paging::PageSize;
    let table = crate::memory::kspace::table().lock();
    for r in &ctx.info.ram {
        let mid = PhysAddr(r.start.0 + r.size() / 2);
        let t = table.translate(phys_to_virt(mid));
        check(
            t.is_some_and(|t| t.0 == mid),
            "direct map translates wrongly",
        )?;
        if r.size() >= 4 << 20 {
            check(
                t.is_some_and(|t| t.2 != PageSize::Size4K),
                "RAM direct-mapped with 4 KiB leaves",
            )?;
        }
    }
    Ok(())
}

/// Each hart stack has an unmapped guard page below it, and the stack itself is mapped.
fn kstack_guard(ctx: &Context<'_>) -> TestResult {
    let table = crate::memory::kspace::table().lock();
    for &h in &ctx.info.harts {
        let Some(stack) = crate::smp::hart_stack(h) else {
            return Err("hart without stack");
        };
        let below = pagoda_mm::addr::VirtAddr(stack.bottom() - 1);
        check(table.translate(below).is_none(), "guard page is mapped")?;
        let inside = pagoda_mm::addr::VirtAddr(stack.top() - 8);
        check(table.translate(inside).is_some(), "stack not mapped")?;
    }
    Ok(())
}

/// ASIDs were detected (QEMU implements 16 bits) and two live address spaces get
/// different ones on this hart.
fn asids(ctx: &Context<'_>) -> TestResult {
    use pagoda_mm::tlb::AsidContext;
    check(ctx.asid_bits <= 16, "more than 16 ASID bits")?;
    let hart = crate::smp::hart_id();
    let (a, b) = (AsidContext::new(), AsidContext::new());
    let sa = crate::memory::tlb::asids().asid_for(&a, hart);
    let sb = crate::memory::tlb::asids().asid_for(&b, hart);
    if ctx.asid_bits > 0 {
        check(
            sa.asid != sb.asid && sa.asid != 0 && sb.asid != 0,
            "ASIDs shared or zero",
        )?;
    }
    let again = crate::memory::tlb::asids().asid_for(&a, hart);
    check(
        again.asid == sa.asid && !again.flush_all,
        "ASID not kept across switches",
    )
}

/// Maps a fresh stack, touches it, write-protects one page, unmaps another, and
/// observes the faults through the fault-tolerant copy routine; then everything is
/// freed and the frame counters are back.
fn map_protect_unmap(_: &Context<'_>) -> TestResult {
    use crate::memory::kstack::KernelStack;
    use crate::memory::{frames, kspace, tlb};
    use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
    use pagoda_mm::paging::PteFlags;
    use pagoda_mm::tlb::{FlushBatch, FlushTarget};
    frames::drain_caches();
    let baseline = frames::stats();
    let faults = || crate::trap::COPY_FAULTS.load(Ordering::Relaxed);
    let copy_in = |va: usize| {
        let mut b = [0u8; 8];
        // SAFETY: `b` is a valid buffer; faults on `va` are caught.
        unsafe { crate::arch::uaccess::copy(b.as_mut_ptr(), va as *const u8, 8) }
    };
    let copy_out = |va: usize| {
        let b = [7u8; 8];
        // SAFETY: as above.
        unsafe { crate::arch::uaccess::copy(va as *mut u8, b.as_ptr(), 8) }
    };
    {
        let stack = KernelStack::new().map_err(|_| "no stack")?;
        let page = stack.bottom();
        check(copy_out(page) && copy_in(page), "fresh mapping not usable")?;
        let before = faults();
        let harts = crate::smp::online_mask();
        {
            let mut t = kspace::table().lock();
            let mut batch = FlushBatch::new(&tlb::HartTlb, FlushTarget::Kernel { harts });
            t.protect_range(VirtAddr(page), PAGE_SIZE, PteFlags::R, &mut batch)
                .map_err(|_| "protect failed")?;
        }
        check(copy_in(page), "read of a read-only page failed")?;
        check(!copy_out(page), "write to a read-only page succeeded")?;
        check(faults() == before + 1, "write fault not observed")?;
        {
            let mut t = kspace::table().lock();
            let mut batch = FlushBatch::new(&tlb::HartTlb, FlushTarget::Kernel { harts });
            t.protect_range(
                VirtAddr(page),
                PAGE_SIZE,
                PteFlags::R | PteFlags::W,
                &mut batch,
            )
            .map_err(|_| "re-protect failed")?;
        }
        check(copy_out(page), "write after restoring W failed")?;
        let gone = page - PAGE_SIZE;
        check(!copy_in(gone), "read of the guard page succeeded")?;
        check(faults() == before + 2, "guard fault not observed")?;
    }
    let after_drop = stack_gone_check()?;
    frames::drain_caches();
    check(
        after_drop && frames::stats().check_no_leaks(&baseline).is_ok(),
        "frames leaked",
    )
}

/// Page-table pages of a dropped user table go to this hart's pool all zero, the next
/// table takes them from there, and a drain gives every one back: the frame counters
/// return to their baseline.
fn table_pool(_: &Context<'_>) -> TestResult {
    use crate::memory::{
        frames,
        uspace::{self, UserMmu},
    };
    use pagoda_mm::addr::{PAGE_SIZE, VirtAddr};
    use pagoda_mm::vm::{Mmu, PagePerms};
    frames::drain_caches();
    let baseline = frames::stats();
    // Eight 4 KiB pages, 2 MiB apart, 1 GiB from the next: a root, two level-1 and eight
    // level-0 tables. The frame is never touched through these mappings.
    let vas = (0..8).map(|i| VirtAddr((1 << 30) * (1 + i / 4) + i * (2 << 20)));
    let build = || -> Result<UserMmu, &'static str> {
        let mut mmu = uspace::new_mmu().map_err(|_| "no user table")?;
        for va in vas.clone() {
            mmu.map(va, PhysAddr(0x8000_0000), PagePerms::READ, false)
                .map_err(|_| "map failed")?;
        }
        Ok(mmu)
    };
    let tables_per_space = 1 + 2 + 8;
    drop(build()?);
    check(
        frames::pooled_tables() == tables_per_space,
        "a dropped table's pages were not pooled",
    )?;
    let pa = frames::alloc_table(false).ok_or("no pooled page")?;
    let words = phys_to_virt(pa).as_usize() as *const u64;
    // SAFETY: a table page just taken from the pool: ours, direct-mapped, 512 words.
    let zero = (0..PAGE_SIZE / 8).all(|i| unsafe { words.add(i).read() } == 0);
    // SAFETY: from `frames::alloc_table`, untouched (all zero, as checked), used by nothing.
    unsafe { frames::free_table(pa) };
    check(zero, "a pooled table page is not zero")?;
    let space = build()?;
    check(
        frames::pooled_tables() == 0,
        "a new table did not reuse pooled pages",
    )?;
    drop(space);
    check(
        frames::pooled_tables() == tables_per_space,
        "the pages did not come back",
    )?;
    frames::drain_caches();
    check(frames::pooled_tables() == 0, "a drain left pages pooled")?;
    check(
        frames::stats().check_no_leaks(&baseline).is_ok(),
        "frame counters not back to baseline",
    )
}

/// After a stack is dropped its slot is unmapped again.
fn stack_gone_check() -> Result<bool, &'static str> {
    let s = crate::memory::kstack::KernelStack::new().map_err(|_| "no stack")?;
    let bottom = s.bottom();
    drop(s);
    crate::memory::kstack::drain_pool();
    let table = crate::memory::kspace::table().lock();
    Ok(table.translate(pagoda_mm::addr::VirtAddr(bottom)).is_none())
}
