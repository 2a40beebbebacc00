//! # pagoda
//!
//! A RISC-V (RV64GC, Sv39) kernel whose heart is the `pagoda-mm` memory manager.
//!
//! Boot path: OpenSBI → [`arch::entry`] (boot page table, Sv39 on) → [`kmain`]: device
//! tree → console → memory → traps and timer → other harts → in-kernel tests (`ktest=`)
//! or the first user program (`/init` from the initramfs, or `init=`), then every hart
//! runs the scheduler.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot;
mod console;
mod drivers;
mod errno;
mod fs;
mod ktest;
mod memory;
mod proc;
mod random;
mod smp;
mod syscall;
mod timer;
mod trap;

use core::ptr::NonNull;

use pagoda_mm::addr::PhysAddr;
use pagoda_mm::layout::{KERNEL_IMAGE_BASE, phys_to_virt};

use boot::BootInfo;
use boot::info::{Devices, Region};

/// Exit status when the kernel panics.
const EXIT_PANIC: u16 = 1;
/// Exit status when the machine cannot run the kernel (bad device tree, no RAM...).
const EXIT_BOOT_ERROR: u16 = 2;
/// Exit status when an in-kernel test failed.
const EXIT_TEST_FAILED: u16 = 3;
/// Exit status when the first process exited (it should power off instead) or could not
/// be started.
pub const EXIT_INIT_DIED: u16 = 4;

/// The first program when the command line names none (`init=`), as on Linux.
const DEFAULT_INIT: &str = "/init";

/// Command-line keys the kernel consumes; other words go to init (see [`start_init`]).
const KERNEL_PARAMS: [&str; 6] = ["ktest", "init", "console", "vm", "tlb", "swap"];

/// The kernel image's physical extent, given where the firmware loaded its first byte.
fn kernel_region(kernel_pa: usize) -> Region {
    let core::ops::Range { start, end } = arch::image_sections().image;
    debug_assert_eq!(start, KERNEL_IMAGE_BASE.as_usize());
    Region {
        start: PhysAddr(kernel_pa),
        end: PhysAddr(kernel_pa + (end - start)),
    }
}

/// First Rust code on the boot hart, with the boot page table active.
pub extern "C" fn kmain(hart: usize, dtb: usize, kernel_pa: usize) -> ! {
    smp::init_this_hart(hart);
    // SAFETY: `dtb` is what the firmware passed in a1; the boot table maps it.
    let fdt = unsafe { boot::info::open(PhysAddr(dtb)) }.unwrap_or_else(|e| fatal(&e));
    let devices = Devices::scan(&fdt).unwrap_or_else(|e| fatal(&e));
    if let Some(finisher) = devices.finisher {
        // SAFETY: the device tree says the finisher's register is there; the boot
        // table direct-maps all physical addresses below DIRECT_MAP_SIZE.
        unsafe { drivers::finisher::init(phys_to_virt(finisher.start).as_usize()) };
    }
    if let Some((uart, shift)) = devices.uart {
        let base = phys_to_virt(uart.start).as_usize() as *mut u8;
        if let Some(base) = NonNull::new(base) {
            // SAFETY: the UART's registers are direct-mapped; only the console drives it.
            unsafe { console::use_uart(base, shift) };
        }
    }
    let info = BootInfo::parse(&fdt, PhysAddr(dtb), kernel_region(kernel_pa), devices)
        .unwrap_or_else(|e| fatal(&e));
    println!("pagoda: booting on hart {hart}");
    let asid_bits = memory::init(&info, kernel_pa).unwrap_or_else(|e| fatal(&e));
    BOOT.call_once(|| Boot {
        info,
        hart,
        kernel_pa,
        asid_bits,
    });
    let Some(stack) = smp::hart_stack(hart) else {
        fatal(&"no stack for the boot hart")
    };
    arch::run_on_stack(stack.top(), boot_hart_main)
}

/// What the boot hart learned before it moved to its guarded stack.
struct Boot {
    info: BootInfo,
    hart: usize,
    kernel_pa: usize,
    asid_bits: u32,
}

static BOOT: spin::Once<Boot> = spin::Once::new();

/// The boot hart, on its guarded stack and the kernel page table.
extern "C" fn boot_hart_main() -> ! {
    let Some(boot) = BOOT.get() else {
        fatal(&"boot state lost")
    };
    let info = &boot.info;
    if let Some(stack) = smp::hart_stack(boot.hart) {
        smp::set_stack_limit(stack.bottom());
    }
    timer::init(info.timebase_hz);
    random::init(info.rng_seed);
    if let Some(rtc) = info.devices.rtc {
        // SAFETY: the device tree says the RTC's registers are there; the kernel table
        // maps every device it lists.
        unsafe { drivers::rtc::init(phys_to_virt(rtc.start).as_usize()) };
    }
    if let Some(r) = info.initrd {
        let ptr = phys_to_virt(r.start).as_usize() as *const u8;
        // SAFETY: the initrd range is RAM the frame allocator never hands out (it is in
        // `BootInfo::unavailable`), direct-mapped, and nobody writes it.
        fs::init(unsafe { core::slice::from_raw_parts(ptr, r.size()) });
    }
    fs::set_file_max(memory::frames::stats().total);
    fs::tmpfs::init(memory::frames::stats().total);
    proc::set_max_tasks(memory::frames::stats().total);
    proc::sched::init();
    if memory::uspace::init().is_err() {
        fatal(&"no memory for the zero page");
    }
    match info.arg("vm") {
        Some("eager") => {
            memory::uspace::set_eager(true);
            println!("pagoda: vm=eager: mappings populated at once, fork copies every page");
        }
        Some("lazy") | None => {}
        Some(other) => println!("pagoda: ignoring unknown vm={other} (lazy or eager)"),
    }
    match info.arg("thp") {
        Some("madvise") => memory::uspace::set_thp(pagoda_mm::vm::Thp::Madvise),
        Some("never") => memory::uspace::set_thp(pagoda_mm::vm::Thp::Never),
        Some("always") | None => {}
        Some(other) => println!("pagoda: ignoring unknown thp={other} (always, madvise or never)"),
    }
    match info.arg("fork") {
        Some("copy") => {
            memory::uspace::set_share_tables(false);
            println!("pagoda: fork=copy: fork copies every page-table entry");
        }
        Some("share") | None => {}
        Some(other) => println!("pagoda: ignoring unknown fork={other} (share or copy)"),
    }
    match info.arg("tlb") {
        Some("broadcast") => {
            memory::tlb::set_mode(memory::tlb::ShootdownMode::Broadcast);
            println!("pagoda: tlb=broadcast: shootdowns reach every online hart");
        }
        Some("noremote") => {
            memory::tlb::set_mode(memory::tlb::ShootdownMode::NoRemote);
            println!("pagoda: tlb=noremote: BROKEN ON PURPOSE, no remote TLB flushes");
        }
        Some("targeted") | None => {}
        Some(other) => {
            println!("pagoda: ignoring unknown tlb={other} (targeted, broadcast or noremote)")
        }
    }
    let online = smp::start_secondaries(info, boot.hart, boot.kernel_pa);
    print_summary(info, online);
    drivers::init(info);
    if info.arg("swap") != Some("off") {
        match memory::swap::enable(true) {
            Ok(pages) => println!("pagoda: swap on, {} MiB", pages >> 8),
            Err(memory::swap::SwapError::NoDevice) => {}
            Err(e) => println!("pagoda: no swap: {e:?}"),
        }
    }
    println!(
        "pagoda: kernel address space active, {} ASID bits",
        boot.asid_bits
    );

    let mut status = 0;
    if let Some(selection) = info.arg("ktest") {
        let ctx = ktest::TestContext {
            info,
            kernel_pa: boot.kernel_pa,
            asid_bits: boot.asid_bits,
        };
        let (passed, failed) = ktest::run(selection, &ctx);
        println!("ktest: {passed} passed, {failed} failed");
        if failed > 0 {
            status = EXIT_TEST_FAILED;
        }
        println!("pagoda: powering off");
        drivers::finisher::power_off(status)
    }
    start_init(info);
    proc::sched::run()
}

/// Starts the first process as Linux does: `init=PATH` or [`DEFAULT_INIT`], with the
/// command line's other words as arguments (those with `=` as its environment).
fn start_init(info: &BootInfo) {
    use alloc::string::String;
    use alloc::vec::Vec;
    let path = info.arg("init").unwrap_or(DEFAULT_INIT);
    let mut argv: Vec<String> = Vec::from([String::from(path)]);
    let mut envp: Vec<String> = Vec::new();
    for word in info.args() {
        match word.split_once('=') {
            Some((key, _)) if KERNEL_PARAMS.contains(&key) => {}
            Some(_) => envp.push(String::from(word)),
            None => argv.push(String::from(word)),
        }
    }
    if let Err(e) = proc::spawn_init(path, &argv, &envp) {
        println!("pagoda: cannot start {path}: {e:?}");
        drivers::finisher::power_off(EXIT_INIT_DIED);
    }
    // After init, which is process 1.
    if let Err(e) = memory::reclaim::start_kswapd() {
        println!("pagoda: no background reclaim: cannot start kswapd0: {e:?}");
    }
}

fn print_summary(info: &BootInfo, online: usize) {
    println!(
        "pagoda: RAM {} MiB in {} region(s)",
        info.ram_bytes() >> 20,
        info.ram.len()
    );
    for r in &info.ram {
        println!("pagoda:   ram      {:#012x}..{:#012x}", r.start.0, r.end.0);
    }
    for r in &info.reserved {
        println!("pagoda:   reserved {:#012x}..{:#012x}", r.start.0, r.end.0);
    }
    println!(
        "pagoda:   kernel   {:#012x}..{:#012x}",
        info.kernel.start.0, info.kernel.end.0
    );
    if let Some(r) = info.initrd {
        println!("pagoda:   initrd   {:#012x}..{:#012x}", r.start.0, r.end.0);
    }
    let frames = memory::frames::stats().free;
    println!("pagoda: usable frames {frames} ({} MiB)", frames >> 8);
    println!(
        "pagoda: harts {} ({online} online), timebase {} Hz, {} virtio slot(s)",
        info.harts.len(),
        info.timebase_hz,
        info.devices.virtio.len()
    );
    println!("pagoda: bootargs \"{}\"", info.bootargs);
    memory::print_stats();
}

/// Reports a boot error and powers off with a failure status.
fn fatal(e: &dyn core::fmt::Display) -> ! {
    println!("pagoda: fatal: {e}");
    drivers::finisher::power_off(EXIT_BOOT_ERROR)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    arch::disable_interrupts();
    match info.location() {
        Some(loc) => println!(
            "pagoda: panic at {}:{}: {}",
            loc.file(),
            loc.line(),
            info.message()
        ),
        None => println!("pagoda: panic: {}", info.message()),
    }
    drivers::finisher::power_off(EXIT_PANIC)
}
