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
