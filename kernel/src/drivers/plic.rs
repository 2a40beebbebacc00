//! The platform-level interrupt controller (`riscv,plic0`): routes device interrupts to
//! the harts' supervisor external interrupt.
//!
//! Register map (per the PLIC specification; offsets from the base):
//!
//! ```text
//!  0x000000 + 4*irq                   priority of source irq (0 = never)
//!  0x002000 + 0x80*ctx + 4*(irq/32)    enable bits of context ctx
//!  0x200000 + 0x1000*ctx               priority threshold of context ctx
//!  0x200004 + 0x1000*ctx               claim (read) / complete (write)
//! ```
//!
//! Which context is a hart's supervisor mode comes from the device tree
//! (`interrupts-extended`), never from a formula. Every source pagoda uses is enabled on
//! every hart's context: whichever hart claims it first handles it.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use pagoda_formats::devicetree::Plic;
use pagoda_mm::layout::{MAX_HARTS, phys_to_virt};

const ENABLE_BASE: usize = 0x2000;
const ENABLE_STRIDE: usize = 0x80;
const CONTEXT_BASE: usize = 0x20_0000;
const CONTEXT_STRIDE: usize = 0x1000;
const CLAIM: usize = 4;
/// Highest source number the controller may have (the specification's limit).
const MAX_SOURCES: u32 = 1023;

/// No context for this hart.
const NONE: u32 = u32::MAX;

/// The kernel virtual address of the registers (0 before [`init`]).
static BASE: AtomicUsize = AtomicUsize::new(0);
/// The size of the register window.
static SIZE: AtomicUsize = AtomicUsize::new(0);
/// Each hart's supervisor context.
static CONTEXT: [AtomicU32; MAX_HARTS] = [const { AtomicU32::new(NONE) }; MAX_HARTS];

/// Records the controller the device tree describes (its registers are mapped by the
/// kernel table), and sets every supervisor context's threshold to 0 (take all).
pub fn init(plic: &Plic) {
    BASE.store(
        phys_to_virt(plic.region.start).as_usize(),
        Ordering::Release,
    );
    SIZE.store(plic.region.size(), Ordering::Release);
    for &(hart, ctx) in &plic.supervisor_contexts {
        if let Some(slot) = CONTEXT.get(hart) {
            slot.store(ctx, Ordering::Release);
            write(CONTEXT_BASE + CONTEXT_STRIDE * ctx as usize, 0);
        }
    }
}

/// Whether a controller was found.
pub fn present() -> bool {
    BASE.load(Ordering::Acquire) != 0
}

/// Enables source `irq` (priority 1) on every hart's supervisor context.
pub fn enable(irq: u32) {
    if irq == 0 || irq > MAX_SOURCES {
        return;
    }
    write(4 * irq as usize, 1);
    for ctx in CONTEXT.iter().map(|c| c.load(Ordering::Acquire)) {
        if ctx != NONE {
            let at = ENABLE_BASE + ENABLE_STRIDE * ctx as usize + 4 * (irq as usize / 32);
            write(at, read(at) | 1 << (irq % 32));
        }
    }
}

/// Claims the highest-priority pending source for `hart`, if any.
pub fn claim(hart: usize) -> Option<u32> {
    let ctx = CONTEXT.get(hart)?.load(Ordering::Acquire);
    if ctx == NONE {
        return None;
    }
    let irq = read(CONTEXT_BASE + CONTEXT_STRIDE * ctx as usize + CLAIM);
    (irq != 0).then_some(irq)
}

/// Signals that `hart` finished handling `irq`.
pub fn complete(hart: usize, irq: u32) {
    if let Some(ctx) = CONTEXT.get(hart).map(|c| c.load(Ordering::Acquire))
        && ctx != NONE
    {
        write(CONTEXT_BASE + CONTEXT_STRIDE * ctx as usize + CLAIM, irq);
    }
}

/// The register at `offset`, if it lies inside the window.
fn register(offset: usize) -> Option<*mut u32> {
    let base = BASE.load(Ordering::Acquire);
    (base != 0 && offset + 4 <= SIZE.load(Ordering::Acquire)).then(|| (base + offset) as *mut u32)
}

fn read(offset: usize) -> u32 {
    // SAFETY: `register` only returns addresses inside the controller's register window,
    // which the kernel table maps for the kernel's lifetime; a 32-bit aligned volatile
    // read is how the specification says to access it.
    register(offset).map_or(0, |r| unsafe { r.read_volatile() })
}

fn write(offset: usize, value: u32) {
    if let Some(r) = register(offset) {
        // SAFETY: as in `read`.
        unsafe { r.write_volatile(value) }
    }
}
