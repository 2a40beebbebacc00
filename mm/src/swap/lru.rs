//! The replacement lists: reclaimable frames on an *active* and an *inactive* list, as
//! Linux's classic two-list LRU for anonymous memory.
//!
//! ```text
//!            new page                    referenced again
//!               │                   ┌───────────────────────┐
//!               ▼                   │                       │
//!   inactive: head ... ... tail ──► scan: not referenced ──► reclaim (swap out)
//!               ▲                                           │
//!               │ deactivate (inactive shorter than active)  │ referenced
//!   active:   head ... ... tail ◄───────────────────────────┘
//! ```
//!
//! Frames are linked through their metadata (two `u32` links each, no allocation):
//! [`Links`] is how the lists reach them, implemented by the kernel over the frame
//! allocator's metadata and by the tests over a vector. Which list a frame is on is
//! recorded with it, so removing a frame that is freed is O(1). The decisions (what to
//! scan, when to deactivate) are the kernel's reclaim loop's, from the referenced bits
//! the reverse map finds; this module keeps the lists exact.

/// "No frame": the end of a list.
pub const NIL: u32 = u32::MAX;

/// Which list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// Recently used.
    Active,
    /// Candidates for reclaim, oldest at the tail.
    Inactive,
}

/// Per-frame storage of the links and the list a frame is on.
pub trait Links {
    /// `[prev, next]` of frame `i`.
    fn links(&self, i: u32) -> [u32; 2];
    /// Sets `[prev, next]` of frame `i`.
    fn set_links(&self, i: u32, links: [u32; 2]);
    /// The list frame `i` is on.
    fn list_of(&self, i: u32) -> Option<List>;
    /// Records the list frame `i` is on.
    fn set_list(&self, i: u32, list: Option<List>);
    /// The pages frame `i` stands for (512 for a huge frame listed by its head). It must
    /// not change while the frame is on a list: the lists count pages with it.
    fn pages(&self, _i: u32) -> usize {
        1
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Ends {
    head: u32,
    tail: u32,
    len: usize,
    pages: usize,
}

const EMPTY: Ends = Ends {
    head: NIL,
    tail: NIL,
    len: 0,
    pages: 0,
};

/// The two lists. Not synchronised: the kernel keeps it under one lock.
#[derive(Debug)]
pub struct Lru {
    lists: [Ends; 2],
}

impl Default for Lru {
    fn default() -> Self {
        Self::new()
    }
}

impl Lru {
    /// Two empty lists.
    pub const fn new() -> Lru {
        Lru {
            lists: [EMPTY, EMPTY],
        }
    }

    fn ends(&mut self, list: List) -> &mut Ends {
        &mut self.lists[list as usize]
    }

    /// Frames on `list`.
    pub fn len(&self, list: List) -> usize {
        self.lists[list as usize].len
    }

    /// Pages on `list` (a huge frame counts its 512).
    pub fn pages(&self, list: List) -> usize {
        self.lists[list as usize].pages
    }

    /// Whether both lists are empty.
    pub fn is_empty(&self) -> bool {
        self.lists.iter().all(|l| l.len == 0)
    }

    /// Adds frame `i` (on no list) at the head of `list`; `false` if it is on a list.
    pub fn push<L: Links + ?Sized>(&mut self, links: &L, i: u32, list: List) -> bool {
        self.insert(links, i, list, true)
    }

    /// Adds frame `i` (on no list) at the tail of `list`, where the next
    /// [`pop_tail`](Self::pop_tail) finds it (the pages of a huge page split for reclaim:
    /// found cold, they go next); `false` if it is on a list.
    pub fn push_tail<L: Links + ?Sized>(&mut self, links: &L, i: u32, list: List) -> bool {
        self.insert(links, i, list, false)
    }

    /// Links frame `i` in at the head (`at_head`) or the tail of `list`.
    fn insert<L: Links + ?Sized>(&mut self, links: &L, i: u32, list: List, at_head: bool) -> bool {
        if i == NIL || links.list_of(i).is_some() {
            return false;
        }
        let ends = self.ends(list);
        let (end, other) = if at_head {
            (&mut ends.head, &mut ends.tail)
        } else {
            (&mut ends.tail, &mut ends.head)
        };
        let old = *end;
        // `[towards the head, towards the tail]` of the new frame, and of the old end.
        links.set_links(i, if at_head { [NIL, old] } else { [old, NIL] });
        if old == NIL {
            *other = i;
        } else {
            let [prev, next] = links.links(old);
            links.set_links(old, if at_head { [i, next] } else { [prev, i] });
        }
        *end = i;
        ends.len += 1;
        ends.pages += links.pages(i);
        links.set_list(i, Some(list));
        true
    }

    /// Takes frame `i` off whichever list it is on; the list it was on.
    pub fn remove<L: Links + ?Sized>(&mut self, links: &L, i: u32) -> Option<List> {
        let list = links.list_of(i)?;
        let [prev, next] = links.links(i);
        let ends = self.ends(list);
        if prev == NIL {
            ends.head = next;
        } else {
            let [pp, _] = links.links(prev);
            links.set_links(prev, [pp, next]);
        }
        if next == NIL {
            ends.tail = prev;
        } else {
            let [_, nn] = links.links(next);
            links.set_links(next, [prev, nn]);
        }
        ends.len -= 1;
        ends.pages -= links.pages(i);
        links.set_links(i, [NIL, NIL]);
        links.set_list(i, None);
        Some(list)
    }

    /// Takes the oldest frame (the tail) off `list`.
    pub fn pop_tail<L: Links + ?Sized>(&mut self, links: &L, list: List) -> Option<u32> {
        let tail = self.lists[list as usize].tail;
        if tail == NIL {
            return None;
        }
        self.remove(links, tail);
        Some(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    struct VecLinks(RefCell<Vec<([u32; 2], Option<List>)>>);

    impl Links for VecLinks {
        fn links(&self, i: u32) -> [u32; 2] {
            self.0.borrow()[i as usize].0
        }
        fn set_links(&self, i: u32, l: [u32; 2]) {
            self.0.borrow_mut()[i as usize].0 = l;
        }
        fn list_of(&self, i: u32) -> Option<List> {
            self.0.borrow()[i as usize].1
        }
        fn set_list(&self, i: u32, list: Option<List>) {
            self.0.borrow_mut()[i as usize].1 = list;
        }
        fn pages(&self, i: u32) -> usize {
            // Every seventh frame stands for a huge page.
            if i.is_multiple_of(7) { 512 } else { 1 }
        }
    }

    /// Random pushes (at either end), removals and pops against two `VecDeque` models; the lists are
    /// also walked from both ends after every step.
    #[test]
    fn random_operations_match_a_model() {
        use proptest::prelude::*;
        const N: u32 = 24;
        proptest!(ProptestConfig::with_cases(300), |(ops in proptest::collection::vec((0u8..6, 0u32..N), 1..300))| {
            let links = VecLinks(RefCell::new(alloc::vec![([NIL, NIL], None); N as usize]));
            let mut lru = Lru::new();
            let mut model = [VecDeque::new(), VecDeque::new()];
            for (op, i) in ops {
                match op {
                    0 | 1 => {
                        let list = if op == 0 { List::Active } else { List::Inactive };
                        let on = model.iter().any(|m| m.contains(&i));
                        prop_assert_eq!(lru.push(&links, i, list), !on);
                        if !on {
                            model[list as usize].push_front(i);
                        }
                    }
                    4 | 5 => {
                        let list = if op == 4 { List::Active } else { List::Inactive };
                        let on = model.iter().any(|m| m.contains(&i));
                        prop_assert_eq!(lru.push_tail(&links, i, list), !on);
                        if !on {
                            model[list as usize].push_back(i);
                        }
                    }
                    2 => {
                        let was = model.iter().position(|m| m.contains(&i));
                        let got = lru.remove(&links, i);
                        prop_assert_eq!(got.map(|l| l as usize), was);
                        if let Some(w) = was {
                            model[w].retain(|&x| x != i);
                        }
                    }
                    _ => {
                        let list = if i % 2 == 0 { List::Active } else { List::Inactive };
                        prop_assert_eq!(lru.pop_tail(&links, list), model[list as usize].pop_back());
                    }
                }
                for (k, m) in model.iter().enumerate() {
                    let ends = lru.lists[k];
                    prop_assert_eq!(ends.len, m.len());
                    prop_assert_eq!(ends.pages, m.iter().map(|&i| links.pages(i)).sum::<usize>());
                    let mut fwd = Vec::new();
                    let mut at = ends.head;
                    while at != NIL {
                        fwd.push(at);
                        at = links.links(at)[1];
                    }
                    prop_assert_eq!(&fwd, &m.iter().copied().collect::<Vec<_>>());
                    let mut back = Vec::new();
                    let mut at = ends.tail;
                    while at != NIL {
                        back.push(at);
                        at = links.links(at)[0];
                    }
                    back.reverse();
                    prop_assert_eq!(back, fwd);
                }
            }
        });
    }
}
