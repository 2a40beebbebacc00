//! In-kernel tests of the device-tree reading on the machine that booted (`ktest=`; the
//! runner is [`crate::ktest`]).

use pagoda_mm::addr::PhysAddr;
use pagoda_mm::layout::phys_to_virt;

use crate::ktest::{TestContext, TestResult, check};

pub(crate) fn fdt_ram(ctx: &TestContext<'_>) -> TestResult {
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

pub(crate) fn fdt_reserved(ctx: &TestContext<'_>) -> TestResult {
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

pub(crate) fn fdt_devices(ctx: &TestContext<'_>) -> TestResult {
    let info = ctx.info;
    check(info.devices.uart.is_some(), "no ns16550a UART")?;
    check(info.devices.finisher.is_some(), "no sifive,test finisher")?;
    check(!info.devices.virtio.is_empty(), "no virtio-mmio slots")?;
    check(info.timebase_hz > 0, "no timebase")
}

pub(crate) fn fdt_bootargs(ctx: &TestContext<'_>) -> TestResult {
    check(
        ctx.info.arg("ktest").is_some(),
        "ktest= not seen in /chosen/bootargs",
    )
}

pub(crate) fn free_ranges(ctx: &TestContext<'_>) -> TestResult {
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
