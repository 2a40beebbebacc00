//! In-kernel tests of memory: the direct map, the frame allocator, the heap, the kernel
//! address space and stacks, ASIDs, the table-page pool (`ktest=`; the runner is
//! [`crate::ktest`]). They probe memory through raw pointers and the fault-tolerant copy,
//! so this module is allowed `unsafe` (each block with its `SAFETY` comment).

use core::sync::atomic::Ordering;

use pagoda_mm::addr::PhysAddr;
use pagoda_mm::layout::{KERNEL_IMAGE_BASE, phys_to_virt};

use crate::ktest::{TestContext, TestResult, check};

/// A word whose kernel-image address and direct-map address must show the same bytes.
static MAP_PROBE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

pub(crate) fn early_map(ctx: &TestContext<'_>) -> TestResult {
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

/// Allocates single frames until none is left, chaining them through their own first
/// word (no heap needed), then frees them all: every counter must be back.
pub(crate) fn frames_exhaust(_: &TestContext<'_>) -> TestResult {
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
pub(crate) fn frames_orders(_: &TestContext<'_>) -> TestResult {
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
pub(crate) fn heap_churn(_: &TestContext<'_>) -> TestResult {
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

/// Bytes in `.rodata`, whose mapping `kspace_wx` checks.
const RODATA_PROBE: &[u8] = b"read-only";

/// No kernel mapping is writable and executable; text is R+X, rodata R, data R+W.
pub(crate) fn kspace_wx(_: &TestContext<'_>) -> TestResult {
    use pagoda_mm::layout::KERNEL_HALF_START;
    use pagoda_mm::paging::PteFlags;
    let mut table = crate::memory::kspace::table().lock();
    let text = table.translate(pagoda_mm::addr::VirtAddr(kernel_main_addr()));
    let rodata = table.translate(pagoda_mm::addr::VirtAddr(RODATA_PROBE.as_ptr() as usize));
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
pub(crate) fn kspace_leaves(ctx: &TestContext<'_>) -> TestResult {
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
pub(crate) fn kstack_guard(ctx: &TestContext<'_>) -> TestResult {
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
pub(crate) fn asids(ctx: &TestContext<'_>) -> TestResult {
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
pub(crate) fn map_protect_unmap(_: &TestContext<'_>) -> TestResult {
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
pub(crate) fn table_pool(_: &TestContext<'_>) -> TestResult {
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
