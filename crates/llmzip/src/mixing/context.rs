//! Context hashing and successor counts: which bytes followed each context, and how often.
//!
//! Contexts (the last n bytes, the current word, …) are hashed into 64-bit keys; a table maps
//! each key to the bytes seen after it. Tables grow with the distinct contexts of a block, which
//! is what a model's working-memory estimate must bound.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Scrambles a context into a well-spread 64-bit key (a splitmix-style finalizer).
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 31;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 32)
}

/// Context keys are already well-mixed hashes; hashing them again would only cost time.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, k: u64) {
        self.0 = k;
    }
}

/// A hash map keyed by context keys.
pub(crate) type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// Successor counts of one context: (byte, count) pairs, few per context.
///
/// Most contexts of the higher orders are followed by a single byte ever, so that case is stored
/// inline (16 bytes per table entry, no allocation): it more than halves the tables' memory on
/// text with many distinct contexts.
#[derive(Clone)]
// The box keeps the enum at 16 bytes (a bare Vec would make every entry 32): the rare second
// allocation buys the common case half the memory.
#[allow(clippy::box_collection)]
pub(crate) enum Successors {
    One((u8, u32)),
    Many(Box<Vec<(u8, u32)>>),
}

impl Successors {
    /// The (byte, count) pairs, in the order the bytes were first seen.
    pub(crate) fn entries(&self) -> &[(u8, u32)] {
        match self {
            Successors::One(e) => std::slice::from_ref(e),
            Successors::Many(v) => v,
        }
    }

    /// Counts one more `byte` after this context.
    fn count(&mut self, byte: u8) {
        match self {
            Successors::One(e) if e.0 == byte => e.1 = e.1.saturating_add(1),
            Successors::One(e) => *self = Successors::Many(Box::new(vec![*e, (byte, 1)])),
            Successors::Many(v) => match v.iter_mut().find(|(b, _)| *b == byte) {
                Some(e) => e.1 = e.1.saturating_add(1),
                None => v.push((byte, 1)),
            },
        }
    }
}

/// Successor counts of every context of one kind.
pub(crate) type Table = KeyMap<Successors>;

/// Counts `byte` after the context `key`.
pub(crate) fn count(table: &mut Table, key: u64, byte: u8) {
    table
        .entry(key)
        .and_modify(|s| s.count(byte))
        .or_insert(Successors::One((byte, 1)));
}

/// Successors kept per context in a [`HashedTable`] slot.
const SLOT_SUCCESSORS: usize = 14;

/// One context's successor counts in a [`HashedTable`], packed in 16-bit words so that a table
/// is a zero-filled array (the system hands out such memory lazily: a table costs only the pages
/// a block touches): word 0 is a check value that tells this context from others hashed to the
/// same place (0: empty), word 1 the number of successors, then their bytes (two per word), then
/// their counts.
type Slot = [u16; SLOT_WORDS];
/// Where a slot's counts start.
const COUNTS_AT: usize = 2 + SLOT_SUCCESSORS.div_ceil(2);
/// 16-bit words per slot.
const SLOT_WORDS: usize = COUNTS_AT + SLOT_SUCCESSORS;

fn slot_byte(s: &Slot, i: usize) -> u8 {
    (s[2 + i / 2] >> (8 * (i % 2))) as u8
}

fn set_slot_byte(s: &mut Slot, i: usize, b: u8) {
    let w = &mut s[2 + i / 2];
    let shift = 8 * (i % 2);
    *w = (*w & !(0xFF << shift)) | (u16::from(b) << shift);
}

/// How much a slot is worth keeping: the counts it holds.
fn slot_priority(s: &Slot) -> u32 {
    s[COUNTS_AT..COUNTS_AT + usize::from(s[1])]
        .iter()
        .map(|&c| u32::from(c))
        .sum()
}

/// Counts one more `byte` in a slot if it is there or there is room; `false` if the slot is
/// full without it.
fn slot_add(s: &mut Slot, byte: u8) -> bool {
    let len = usize::from(s[1]);
    if let Some(i) = (0..len).find(|&i| slot_byte(s, i) == byte) {
        if s[COUNTS_AT + i] == u16::MAX {
            for c in &mut s[COUNTS_AT..COUNTS_AT + len] {
                *c = (*c).div_ceil(2);
            }
        }
        s[COUNTS_AT + i] += 1;
        true
    } else if len < SLOT_SUCCESSORS {
        set_slot_byte(s, len, byte);
        s[COUNTS_AT + len] = 1;
        s[1] += 1;
        true
    } else {
        false
    }
}

/// Makes room in a full slot: its least counted successor (the last of equals) gives way.
fn slot_replace(s: &mut Slot, byte: u8) {
    let mut weakest = 0;
    for i in 1..usize::from(s[1]) {
        if s[COUNTS_AT + i] <= s[COUNTS_AT + weakest] {
            weakest = i;
        }
    }
    set_slot_byte(s, weakest, byte);
    s[COUNTS_AT + weakest] = 1;
}

/// Slots one context may chain: its successors beyond a full slot continue in the next.
const CHAIN: u64 = 4;

/// The layout and policies of hashed tables, for the fingerprints of the models that use them:
/// a change here changes what those models predict.
pub(crate) fn hashed_layout() -> String {
    format!(
        "slot={SLOT_SUCCESSORS}x(u8,u16)+check16 chain={CHAIN} pair=least-counted-replaced \
         full=least-counted-replaced halve-at=65535 direct=u16"
    )
}

/// The key of link `c` of a context's chain.
fn link(key: u64, c: u64) -> u64 {
    if c == 0 {
        key
    } else {
        mix64(key.wrapping_add(c))
    }
}

/// Successor counts of one kind of context in a table of fixed size, as lpaq and paq8 keep
/// theirs: memory is bounded whatever the input, at the price of forgetting. A key picks a pair
/// of neighbouring slots; a slot whose check value matches is the context's, and a new context
/// replaces the less counted of the two.
pub(crate) struct HashedTable {
    slots: Vec<Slot>,
    mask: usize,
}

impl HashedTable {
    /// A table of 2^`bits` slots (at least 2).
    pub(crate) fn new(bits: u32) -> HashedTable {
        let bits = bits.max(1);
        HashedTable {
            slots: vec![[0; SLOT_WORDS]; 1 << bits],
            mask: (1 << bits) - 1,
        }
    }

    /// Bytes of memory a table of 2^`bits` slots takes at most.
    pub(crate) fn bytes(bits: u32) -> u64 {
        (std::mem::size_of::<Slot>() as u64) << bits.max(1)
    }

    /// A table as [`new`](Self::new) makes it, in `old`'s memory when `old` is a hashed table
    /// of that size: a model that starts a new block clears its tables instead of freeing
    /// them and allocating fresh ones, which is faster (pages already mapped are written, not
    /// faulted in again: a two-block file 11 % faster, docs/profile.md).
    pub(crate) fn reuse(old: Option<Store>, bits: u32) -> HashedTable {
        match old {
            Some(Store::Hashed(mut t)) if t.slots.len() == 1 << bits.max(1) => {
                t.slots.fill([0; SLOT_WORDS]);
                t
            }
            _ => HashedTable::new(bits),
        }
    }

    fn place(&self, key: u64) -> (usize, u16) {
        // Low bits pick the slot pair, high bits check it; a check of 0 marks an empty slot.
        ((key as usize) & self.mask & !1, ((key >> 48) as u16).max(1))
    }

    /// Asks the CPU to bring the slot pair of `key` toward its caches, so that a lookup that
    /// follows finds it there. A hint: it changes no result.
    pub(crate) fn prefetch(&self, key: u64) {
        let (i, _) = self.place(key);
        // 92 bytes: two or three cache lines, whatever the alignment.
        let pair = self.slots[i..i + 2].as_ptr().cast::<u8>();
        let last = std::mem::size_of::<[Slot; 2]>() - 1;
        for offset in (0..last).step_by(64).chain([last]) {
            prefetch(pair.wrapping_add(offset));
        }
    }

    fn find(&self, key: u64) -> Option<usize> {
        let (i, check) = self.place(key);
        (i..i + 2).find(|&j| self.slots[j][0] == check)
    }

    /// The slot of `key`, made (in place of the less counted of its pair) if it has none.
    fn claim(&mut self, key: u64) -> usize {
        if let Some(j) = self.find(key) {
            return j;
        }
        let (i, check) = self.place(key);
        let j = if slot_priority(&self.slots[i + 1]) < slot_priority(&self.slots[i]) {
            i + 1
        } else {
            i
        };
        self.slots[j] = [0; SLOT_WORDS];
        self.slots[j][0] = check;
        j
    }

    /// Calls `f(byte, count)` for the successors of `key` and returns how many there are.
    pub(crate) fn visit(&self, key: u64, mut f: impl FnMut(u8, u32)) -> usize {
        let mut seen = 0;
        for c in 0..CHAIN {
            let Some(j) = self.find(link(key, c)) else {
                break;
            };
            let slot = &self.slots[j];
            let len = usize::from(slot[1]);
            for i in 0..len {
                f(slot_byte(slot, i), u32::from(slot[COUNTS_AT + i]));
            }
            seen += len;
            if len < SLOT_SUCCESSORS {
                break;
            }
        }
        seen
    }

    /// Counts one more `byte` after `key`: in the first slot of its chain that holds it or has
    /// room; when all [`CHAIN`] slots are full, the last one's least counted successor gives way.
    pub(crate) fn count(&mut self, key: u64, byte: u8) {
        let mut last = 0;
        for c in 0..CHAIN {
            let j = self.claim(link(key, c));
            if slot_add(&mut self.slots[j], byte) {
                return;
            }
            last = j;
        }
        slot_replace(&mut self.slots[last], byte);
    }
}

/// Successor counts of a short context (at most 2 bytes) in a direct array: every context has
/// its place, every successor its count, no hashing and no forgetting.
pub(crate) struct DirectTable {
    counts: Vec<u16>,
}

impl DirectTable {
    /// A table for contexts of `order` (1 or 2) bytes.
    pub(crate) fn new(order: usize) -> DirectTable {
        assert!(
            (1..=2).contains(&order),
            "direct tables hold orders 1 and 2"
        );
        DirectTable {
            counts: vec![0; 256 << (8 * order)],
        }
    }

    /// Bytes of memory a table for `order` takes.
    pub(crate) fn bytes(order: usize) -> u64 {
        2 * (256u64 << (8 * order))
    }

    /// A table as [`new`](Self::new) makes it, in `old`'s memory when `old` is a direct table
    /// of that order (see [`HashedTable::reuse`]).
    pub(crate) fn reuse(old: Option<Store>, order: usize) -> DirectTable {
        match old {
            Some(Store::Direct(mut t)) if t.counts.len() == 256 << (8 * order) => {
                t.counts.fill(0);
                t
            }
            _ => DirectTable::new(order),
        }
    }

    /// Calls `f(byte, count)` for the successors of the context `key` (its bytes, newest in the
    /// low byte) and returns how many there are.
    pub(crate) fn visit(&self, key: u64, mut f: impl FnMut(u8, u32)) -> usize {
        let row = &self.counts[(key as usize) << 8..][..256];
        let mut seen = 0;
        for (b, &c) in row.iter().enumerate() {
            if c > 0 {
                f(b as u8, u32::from(c));
                seen += 1;
            }
        }
        seen
    }

    /// Counts one more `byte` after the context `key`.
    pub(crate) fn count(&mut self, key: u64, byte: u8) {
        let row = &mut self.counts[(key as usize) << 8..][..256];
        if row[usize::from(byte)] == u16::MAX {
            for c in row.iter_mut() {
                *c = (*c).div_ceil(2);
            }
        }
        row[usize::from(byte)] += 1;
    }
}

/// Where one kind of context keeps its counts.
pub(crate) enum Store {
    /// Grows with the distinct contexts seen (`gru-cm`).
    Growing(Table),
    /// Fixed size, hashed, forgetting (`gru-cm2`).
    Hashed(HashedTable),
    /// Fixed size, one place per context (`gru-cm2`, orders 1 and 2).
    Direct(DirectTable),
}

/// A prefetch hint for the cache line holding `p` (none on CPUs without one in `core::arch`).
#[inline]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Store {
    /// Asks the CPU to bring what [`visit`](Self::visit) of `key` reads toward its caches (the
    /// first slot pair of a hashed table's chain). A hint: it changes no result.
    pub(crate) fn prefetch(&self, key: u64) {
        if let Store::Hashed(t) = self {
            t.prefetch(key);
        }
    }

    /// Calls `f(byte, count)` for the successors of `key` and returns how many there are.
    pub(crate) fn visit(&self, key: u64, mut f: impl FnMut(u8, u32)) -> usize {
        match self {
            Store::Growing(t) => t.get(&key).map_or(0, |s| {
                for &(b, c) in s.entries() {
                    f(b, c);
                }
                s.entries().len()
            }),
            Store::Hashed(t) => t.visit(key, f),
            Store::Direct(t) => t.visit(key, f),
        }
    }

    /// Counts one more `byte` after `key`.
    pub(crate) fn count(&mut self, key: u64, byte: u8) {
        match self {
            Store::Growing(t) => count(t, key, byte),
            Store::Hashed(t) => t.count(key, byte),
            Store::Direct(t) => t.count(key, byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashed tables take well-mixed keys (as the models give them); direct ones raw bytes.
    fn key_for(store: &Store, key: u64) -> u64 {
        match store {
            Store::Direct(_) => key,
            _ => mix64(key),
        }
    }

    fn successors(store: &Store, key: u64) -> Vec<(u8, u32)> {
        let key = key_for(store, key);
        let mut v = Vec::new();
        let n = store.visit(key, |b, c| v.push((b, c)));
        assert_eq!(n, v.len());
        v.sort();
        v
    }

    #[test]
    fn all_stores_count_alike_while_nothing_is_forgotten() {
        let mut stores = [
            Store::Growing(Table::default()),
            Store::Hashed(HashedTable::new(10)),
            Store::Direct(DirectTable::new(2)),
        ];
        for store in &mut stores {
            for (key, byte) in [(0x6162, b'c'), (0x6162, b'c'), (0x6162, b'd'), (0x20, b'x')] {
                store.count(key_for(store, key), byte);
            }
        }
        for store in &stores {
            assert_eq!(successors(store, 0x6162), [(b'c', 2), (b'd', 1)]);
            assert_eq!(successors(store, 0x20), [(b'x', 1)]);
            assert_eq!(successors(store, 0x21), []);
        }
    }

    #[test]
    fn hashed_tables_stay_bounded_and_keep_the_most_counted() {
        let mut t = HashedTable::new(4);
        // A heavily counted context survives a flood of new ones.
        let strong = mix64(1);
        for _ in 0..100 {
            t.count(strong, b'a');
        }
        for k in 2..10_000u64 {
            t.count(mix64(k), b'b');
        }
        assert_eq!(t.slots.len(), 16);
        let mut got = Vec::new();
        t.visit(strong, |b, c| got.push((b, c)));
        assert_eq!(got, [(b'a', 100)]);
        // A context with more successors than a slot holds chains slots, up to CHAIN of them;
        // then its least counted successor gives way.
        let mut t = HashedTable::new(12);
        let key = mix64(99_999);
        let most = SLOT_SUCCESSORS * CHAIN as usize;
        for b in 0..=most as u8 {
            for _ in 0..=(most - b as usize) {
                t.count(key, b);
            }
        }
        let mut got = Vec::new();
        assert_eq!(t.visit(key, |b, c| got.push((b, c))), most);
        got.sort();
        assert_eq!(got[0], (0, most as u32 + 1));
        // The last byte came once and took the place of the least counted one.
        assert_eq!(got[most - 1], (most as u8, 1));
        // Counts halve instead of overflowing.
        let mut d = DirectTable::new(1);
        for _ in 0..70_000 {
            d.count(7, b'z');
        }
        d.visit(7, |_, c| assert!(c > 30_000 && c <= 65_535));
    }
}
