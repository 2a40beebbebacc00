//! In-kernel tests, selected on the command line with `ktest=all` or
//! `ktest=name,name,...`. Each prints one line the host harness reads:
//! `TEST kernel/<name> PASS` or `TEST kernel/<name> FAIL <reason>`.
//!
//! This is the runner and the list of tests; each test lives beside the code it tests,
//! in that area's `ktest` module: [`crate::boot::ktest`] (the device tree),
//! [`crate::trap::ktest`] (the trap path), [`crate::memory::ktest`] (frames, heap,
//! kernel address space, stacks, ASIDs, table pages). The harts test and the two tests
//! that end the boot (`panic`, `stack_overflow`) are here.

use crate::boot::BootInfo;
use crate::{boot, memory, trap};

/// What a test needs to know about the running kernel.
pub struct TestContext<'a> {
    /// The parsed device tree.
    pub info: &'a BootInfo,
    /// Physical load address of the kernel image.
    pub kernel_pa: usize,
    /// ASID bits the hardware implements.
    pub asid_bits: u32,
}

/// A test's verdict: `Err` carries the reason printed after `FAIL`.
pub(crate) type TestResult = Result<(), &'static str>;

struct KernelTest {
    name: &'static str,
    run: fn(&TestContext<'_>) -> TestResult,
}

/// Tests that end the boot, run only when named explicitly (never by `all`).
const EXPLICIT: &[(&str, fn())] = &[
    ("panic", deliberate_panic),
    ("stack_overflow", overflow_stack),
];

/// `Ok` when `cond` holds, else the failure `why`.
pub(crate) fn check(cond: bool, why: &'static str) -> TestResult {
    if cond { Ok(()) } else { Err(why) }
}

const TESTS: &[KernelTest] = &[
    KernelTest {
        name: "fdt_ram",
        run: boot::ktest::fdt_ram,
    },
    KernelTest {
        name: "fdt_reserved",
        run: boot::ktest::fdt_reserved,
    },
    KernelTest {
        name: "fdt_devices",
        run: boot::ktest::fdt_devices,
    },
    KernelTest {
        name: "fdt_bootargs",
        run: boot::ktest::fdt_bootargs,
    },
    KernelTest {
        name: "free_ranges",
        run: boot::ktest::free_ranges,
    },
    KernelTest {
        name: "early_map",
        run: memory::ktest::early_map,
    },
    KernelTest {
        name: "trap_breakpoint",
        run: trap::ktest::trap_breakpoint,
    },
    KernelTest {
        name: "trap_timer",
        run: trap::ktest::trap_timer,
    },
    KernelTest {
        name: "harts_online",
        run: harts_online,
    },
    KernelTest {
        name: "frames_exhaust",
        run: memory::ktest::frames_exhaust,
    },
    KernelTest {
        name: "frames_orders",
        run: memory::ktest::frames_orders,
    },
    KernelTest {
        name: "heap_churn",
        run: memory::ktest::heap_churn,
    },
    KernelTest {
        name: "kspace_wx",
        run: memory::ktest::kspace_wx,
    },
    KernelTest {
        name: "kspace_leaves",
        run: memory::ktest::kspace_leaves,
    },
    KernelTest {
        name: "kstack_guard",
        run: memory::ktest::kstack_guard,
    },
    KernelTest {
        name: "asids",
        run: memory::ktest::asids,
    },
    KernelTest {
        name: "map_protect_unmap",
        run: memory::ktest::map_protect_unmap,
    },
    KernelTest {
        name: "table_pool",
        run: memory::ktest::table_pool,
    },
];

/// Runs the tests `selection` names (`all`, or a comma-separated list); returns
/// (passed, failed). Unknown names count as failures.
pub fn run(selection: &str, ctx: &TestContext<'_>) -> (usize, usize) {
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

fn harts_online(ctx: &TestContext<'_>) -> TestResult {
    check(
        crate::smp::online() == ctx.info.harts.len(),
        "not every hart came online",
    )
}
