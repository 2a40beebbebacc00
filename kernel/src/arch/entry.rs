//! Boot entry: the first instructions the kernel runs, on every hart.
//!
//! OpenSBI enters `_start` in S-mode with the MMU off, `a0` = hart id and `a1` = physical
//! address of the flattened device tree. The kernel is linked in the upper half
//! ([`KERNEL_IMAGE_BASE`]) but runs at whatever 2 MiB-aligned physical address the
//! firmware loaded it, so this code is position independent (`lla`, PC-relative) until
//! paging is on. It then:
//!
//! 0. draws the boot lottery: the first hart here boots, any other (a firmware may start
//!    several harts here) stops itself through SBI HSM and is started later like the
//!    other secondaries,
//! 1. clears `.bss` (boot hart only),
//! 2. fills the boot page table ([`BOOT_ROOT`]): the gigabyte holding the image mapped
//!    1:1 (so the instruction after `csrw satp` still runs), the direct map in 1 GiB
//!    leaves, and the image at its link address in 2 MiB leaves,
//! 3. turns on Sv39 and jumps to its link address, onto the boot stack,
//! 4. calls [`crate::kmain`] (boot hart, with the image's physical load address as a
//!    third argument) or [`crate::smp::secondary_main`] (other harts).
//!
//! The boot table is temporary: `memory::kernel_space` builds the real kernel address
//! space with per-section permissions and switches to it.

use core::arch::global_asm;

use pagoda_mm::layout::{
    DIRECT_MAP_BASE, DIRECT_MAP_SIZE, GIGAPAGE_SIZE, KERNEL_IMAGE_BASE, KERNEL_IMAGE_MAX,
    MEGAPAGE_SIZE,
};
use pagoda_mm::paging::SATP_MODE_SV39;

/// Number of 4 KiB pages of stack the boot hart starts on.
const BOOT_STACK_SIZE: usize = 64 * 1024;

/// A page-aligned Sv39 page-table page, as the boot code fills it.
#[repr(C, align(4096))]
pub struct BootTable([u64; 512]);

/// The boot root table (level 2). Written only by the assembly below, before Rust runs.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data.boot_tables")]
static mut BOOT_ROOT: BootTable = BootTable([0; 512]);

/// The level-1 table that maps the kernel image at its link address in 2 MiB leaves.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data.boot_tables")]
static mut BOOT_IMAGE_L1: BootTable = BootTable([0; 512]);

/// The boot lottery: the first hart to add one to it boots the kernel (in `.data`, not
/// `.bss`: the winner clears `.bss`, and a late hart must still see it drawn).
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data.boot_lottery")]
static mut BOOT_LOTTERY: u32 = 0;

/// SBI's hart state management extension, and its `hart_stop` function.
const SBI_EXT_HSM: usize = 0x48_534d;
const SBI_HSM_HART_STOP: usize = 1;

/// The boot hart's stack (secondary harts get theirs from [`crate::smp`]).
#[repr(C, align(4096))]
struct BootStack([u8; BOOT_STACK_SIZE]);

#[unsafe(no_mangle)]
#[unsafe(link_section = ".bss.boot_stack")]
static mut BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);

// PTE bits used by the boot table: V R W X A D (leaves) and G (kernel mappings are global).
global_asm!(
    r#"
    .equ PTE_LEAF_RWX, 0xef
    .equ PTE_TABLE, 0x01

    .section .text.entry, "ax"
    .globl _start
_start:
    csrw    sie, zero
    csrw    sscratch, zero
    // One hart boots; the firmware may send more than one here (Linux's hart lottery).
    lla     t0, BOOT_LOTTERY
    li      t1, 1
    .option push
    .option arch, +a
    amoadd.w t1, t1, (t0)
    .option pop
    bnez    t1, .Llost_lottery
    mv      s0, a0                      // hart id
    mv      s1, a1                      // device tree (physical)
    lla     s2, __kernel_start          // where the firmware loaded the image

    // clear .bss (physical addresses: PC-relative)
    lla     t0, __bss_start
    lla     t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    call    .Lfill_tables
    call    .Lenable_paging
    // now at the link address: PC-relative addresses are link addresses
    lla     sp, BOOT_STACK
    li      t0, {boot_stack_size}
    add     sp, sp, t0
    mv      a0, s0
    mv      a1, s1
    mv      a2, s2
    call    {kmain}
    j       .

    // A hart that lost the lottery gives itself back to the firmware, stopped (SBI HSM
    // hart_stop: it does not return), so that the boot hart starts it like any other;
    // without HSM it stays parked.
.Llost_lottery:
    li      a7, {sbi_hsm}
    li      a6, {hsm_hart_stop}
    ecall
3:  wfi
    j       3b

    // Secondary harts (started through SBI HSM): a0 = hart id, a1 = top of the hart's
    // guarded stack, mapped only in the kernel table (KERNEL_SATP).
    .globl _start_secondary
_start_secondary:
    csrw    sie, zero
    csrw    sscratch, zero
    mv      s0, a0
    mv      s1, a1
    call    .Lenable_paging
    // switch to the kernel table, where the stack in s1 is mapped
    lla     t0, KERNEL_SATP
    ld      t0, 0(t0)
    csrw    satp, t0
    sfence.vma
    mv      sp, s1
    mv      a0, s0
    call    {secondary}
    j       .

    // Fill BOOT_ROOT / BOOT_IMAGE_L1 (t registers and a2 only; MMU off).
.Lfill_tables:
    lla     t0, __kernel_start          // physical load address of the image
    lla     t1, BOOT_ROOT
    // identity gigapage for the gigabyte holding the image
    srli    t2, t0, 30
    slli    t3, t2, 3
    add     t3, t1, t3
    slli    t4, t2, 28
    ori     t4, t4, PTE_LEAF_RWX
    sd      t4, 0(t3)
    // direct map: 1 GiB leaves for physical [0, DIRECT_MAP_SIZE)
    li      t2, 0
    li      t5, {direct_gigs}
    li      t3, {direct_index}
    slli    t3, t3, 3
    add     t3, t1, t3
3:  slli    t4, t2, 28
    ori     t4, t4, PTE_LEAF_RWX
    sd      t4, 0(t3)
    addi    t2, t2, 1
    addi    t3, t3, 8
    blt     t2, t5, 3b
    // image: root[image_index] -> BOOT_IMAGE_L1; L1[i] = 2 MiB leaf at load + i * 2 MiB
    lla     t2, BOOT_IMAGE_L1
    srli    t4, t2, 12
    slli    t4, t4, 10
    ori     t4, t4, PTE_TABLE
    li      t3, {image_index}
    slli    t3, t3, 3
    add     t3, t1, t3
    sd      t4, 0(t3)
    li      t5, {image_megas}
    li      t3, {image_l1_index}
    slli    t3, t3, 3
    add     t3, t2, t3
    srli    t4, t0, 12
    slli    t4, t4, 10
    ori     t4, t4, PTE_LEAF_RWX
    li      a2, {mega_pte_step}
4:  sd      t4, 0(t3)
    add     t4, t4, a2
    addi    t3, t3, 8
    addi    t5, t5, -1
    bnez    t5, 4b
    ret

    // Turn on Sv39 with the boot table and return to the caller's link address
    // (ra + link - load). The instructions up to `ret` run through the identity map.
.Lenable_paging:
    lla     t1, BOOT_ROOT
    srli    t1, t1, 12
    li      t2, {satp_sv39}
    or      t1, t1, t2
    sfence.vma
    csrw    satp, t1
    sfence.vma
    lla     t0, __kernel_start
    li      t1, {image_base}
    sub     t1, t1, t0
    add     ra, ra, t1
    ret
"#,
    kmain = sym crate::kmain,
    secondary = sym crate::smp::secondary_main,
    boot_stack_size = const BOOT_STACK_SIZE,
    direct_gigs = const DIRECT_MAP_SIZE / GIGAPAGE_SIZE,
    sbi_hsm = const SBI_EXT_HSM,
    hsm_hart_stop = const SBI_HSM_HART_STOP,
    direct_index = const (DIRECT_MAP_BASE.0 >> 30) & 0x1ff,
    image_index = const (KERNEL_IMAGE_BASE.0 >> 30) & 0x1ff,
    image_l1_index = const (KERNEL_IMAGE_BASE.0 >> 21) & 0x1ff,
    image_megas = const KERNEL_IMAGE_MAX / MEGAPAGE_SIZE,
    mega_pte_step = const (MEGAPAGE_SIZE >> 12) << 10,
    image_base = const KERNEL_IMAGE_BASE.0,
    satp_sv39 = const SATP_MODE_SV39,
);
