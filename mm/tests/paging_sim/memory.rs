//! A simulated physical memory for page-table pages ([`SimMemory`]). Part of
//! `paging_sim`; the vm suite includes it alone (`#[path]`) to run the real Sv39 table.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use pagoda_mm::addr::{PAGE_SIZE, PhysAddr};
use pagoda_mm::paging::{PagingMemory, TablePage};

/// Fake physical address of the simulated memory's first page.
pub const SIM_PHYS_BASE: usize = 0x8000_0000;

/// A fixed arena of table pages handing out fake physical addresses. Counts live pages,
/// fails allocation when the arena is full (to test running out of memory) and, in debug
/// builds, checks every access and free against the set of live pages and poisons freed
/// pages, so a use after free or a double free fails the test.
///
/// It keeps `PagingMemory`'s zero contract from its side: `alloc_table` hands out zeroed
/// pages (the arena starts zeroed; a page poisoned on free is zeroed again when it is
/// handed out, in debug builds; otherwise a freed page, all zero, is reused as it is).
/// Unless [`check_zero`](Self::check_zero) is cleared, `free_table` also asserts that the
/// page it takes back is all zero, in every build.
pub struct SimMemory {
    arena: NonNull<TablePage>,
    capacity: usize,
    state: Mutex<State>,
    live: AtomicUsize,
    /// Whether `free_table` reads every page it takes back and panics unless it is all
    /// zero (on by default; the benchmark turns it off, the read costs a few hundred
    /// nanoseconds per freed table).
    pub check_zero: bool,
}

struct State {
    free: Vec<usize>,
    next: usize,
    allocated: Vec<bool>,
}

// SAFETY: the arena is only reached through atomics (`TablePage`) or under `state`.
unsafe impl Sync for SimMemory {}
// SAFETY: as above; the arena is owned.
unsafe impl Send for SimMemory {}

impl SimMemory {
    /// An arena of `capacity` pages (reserved lazily by the host OS).
    pub fn new(capacity: usize) -> Self {
        let layout = Self::layout(capacity);
        // SAFETY: the layout has a non-zero size (at least one page is reserved).
        let arena = NonNull::new(unsafe { alloc_zeroed(layout) }.cast::<TablePage>())
            .expect("arena allocation");
        Self {
            arena,
            capacity,
            state: Mutex::new(State {
                free: Vec::new(),
                next: 0,
                allocated: vec![false; capacity],
            }),
            live: AtomicUsize::new(0),
            check_zero: true,
        }
    }

    fn layout(capacity: usize) -> Layout {
        Layout::array::<TablePage>(capacity.max(1)).expect("arena size")
    }

    /// Number of table pages currently allocated.
    pub fn live_tables(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The bytes of arena page `index`.
    fn page(&self, index: usize) -> *mut u8 {
        assert!(
            index < self.capacity,
            "page {index} outside the simulated memory"
        );
        // SAFETY: `index` is inside the arena.
        unsafe { self.arena.as_ptr().add(index).cast::<u8>() }
    }

    fn index(&self, pa: PhysAddr) -> usize {
        let index = (pa.0 - SIM_PHYS_BASE) / PAGE_SIZE;
        debug_assert!(index < self.capacity, "{pa:?} outside the simulated memory");
        index
    }
}

impl Drop for SimMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.arena.as_ptr().cast(), Self::layout(self.capacity)) };
    }
}

// SAFETY: pages are handed out once until freed; `table_ptr` points into the arena, which
// lives as long as `self`.
unsafe impl PagingMemory for SimMemory {
    fn alloc_table(&self) -> Option<PhysAddr> {
        let mut state = self.state.lock().unwrap();
        let index = match state.free.pop() {
            Some(index) => index,
            None if state.next < self.capacity => {
                state.next += 1;
                state.next - 1
            }
            None => return None,
        };
        state.allocated[index] = true;
        if cfg!(debug_assertions) {
            // SAFETY: the page is in the arena and was free until now; it holds the
            // poison `free_table` wrote (or zeros, if never used).
            unsafe { self.page(index).write_bytes(0, PAGE_SIZE) };
        }
        self.live.fetch_add(1, Ordering::Relaxed);
        Some(PhysAddr(SIM_PHYS_BASE + index * PAGE_SIZE))
    }

    unsafe fn free_table(&self, pa: PhysAddr) {
        let index = self.index(pa);
        let mut state = self.state.lock().unwrap();
        assert!(state.allocated[index], "double free of table {pa:?}");
        state.allocated[index] = false;
        if self.check_zero {
            // SAFETY: the page is in the arena and was allocated until now.
            let bytes = unsafe { std::slice::from_raw_parts(self.page(index), PAGE_SIZE) };
            if let Some(at) = bytes.iter().position(|&b| b != 0) {
                panic!("table page {pa:?} freed with a non-zero byte at offset {at:#x}");
            }
        }
        if cfg!(debug_assertions) {
            // SAFETY: the page is in the arena and, being freed, no longer used.
            unsafe { self.page(index).write_bytes(0xa5, PAGE_SIZE) };
        }
        state.free.push(index);
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    #[inline]
    fn table_ptr(&self, pa: PhysAddr) -> NonNull<TablePage> {
        let index = self.index(pa);
        if cfg!(debug_assertions) {
            assert!(
                self.state.lock().unwrap().allocated[index],
                "access to free table {pa:?}"
            );
        }
        // SAFETY: `index` is inside the arena.
        unsafe { self.arena.add(index) }
    }
}
