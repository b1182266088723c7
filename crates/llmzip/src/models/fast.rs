//! `fast1`: context mixing alone, one bit at a time — the model of the fast levels (`llmzip -1`).
//!
//! Every other model predicts a whole next-symbol distribution per step, which the range coder
//! needs. A byte-level context mixer that fills in all 255 nodes of a byte's binary tree does
//! 255 predictions for the 8 that a byte's bits actually take; coded bit by bit, with the binary
//! arithmetic coder ([`crate::coder::binary`]), it does only those 8. That is what makes this
//! model fast (hundreds of KB/s on one core), and why it implements [`BitPredictor`]: the codec
//! codes a block of a model that offers one bit by bit, in one stream, instead of in lockstep
//! rows ([`crate::codec`]).
//!
//! The parts are lpaq1's, simplified where measurement on the validation text said it costs
//! little (docs/models.md, "The fast level"):
//! - contexts of order 0 (the bits of the current byte), 1, 2, 3, 4 and 6 bytes, and the
//!   current word (letters only, case folded). Each context, with the high nibble of the
//!   current byte once it is known, selects a slot of 15 adaptive bit probabilities (one per
//!   node of a nibble's tree), hashed into a table of fixed size with a check value, so that a
//!   slot that another context took is restarted rather than trusted;
//! - a match model that follows the last occurrence of the preceding 6 bytes and predicts the
//!   bit of the byte that followed it, trusted by how long the match has held;
//! - two mixers in the logistic domain (weight sets chosen by the partial byte, and by the
//!   match length and bit position), averaged; then two adaptive probability maps (by the
//!   partial byte, and by it with the previous byte).
//!
//! Determinism: integers only (22-bit probabilities with counts, 16.16 mixer weights, lpaq's
//! squash). Everything resets with each block. Memory is fixed: [`TABLE_BITS`] per context.

use super::{BatchShape, BitPredictor, LanguageModel, ModelInfo};
use crate::format::{Backend, Fingerprint};
use crate::mixing::apm::Apm;
use crate::mixing::context::mix64;
use crate::mixing::logistic::{squash, stretch_table};
use crate::mixing::mixer::{self, Learning, UNIT_RATE};
use crate::tokenization::{ByteTokenizer, Tokenizer};
use crate::{Error, Result};

/// The model's name, as `-m` takes it and headers record it.
pub const NAME: &str = "fast1";

/// Every constant that changes a prediction; hashed into the fingerprint.
#[derive(Debug, Clone, PartialEq)]
struct Params {
    /// Byte orders of the hashed contexts (the word context comes on top).
    orders: [usize; 5],
    /// Each hashed context has 2^table_bits slots of 64 bytes.
    table_bits: u32,
    /// Counters adapt at rate 1/(n + 1.5), n capped here.
    limit: u32,
    /// Mixer learning: weights move by `input · error >> mix_shift`.
    mix_shift: i32,
    /// Initial weight of every mixer input (16.16).
    initial_weight: i32,
    /// The match model predicts after a repeat of this many bytes.
    match_min: usize,
    /// The match model's index has 2^match_bits entries.
    match_bits: u32,
    /// APM adaptation rate (shift).
    apm_rate: i32,
}

const PARAMS: Params = Params {
    orders: [1, 2, 3, 4, 6],
    table_bits: 18,
    limit: 20,
    mix_shift: 11,
    initial_weight: 1 << 14,
    match_min: 6,
    match_bits: 20,
    apm_rate: 7,
};

/// Hashed contexts: the byte orders and the word.
const HASHED: usize = 6;
/// Mixer inputs: order 0, the hashed contexts, the match model, a bias.
const INPUTS: usize = HASHED + 3;
/// The slots' size: a check value and the 15 nodes of a nibble's tree.
const SLOT: usize = 16;
/// Log2 of the slots per hashed context (64 bytes each).
pub const TABLE_BITS: u32 = PARAMS.table_bits;
/// Match-length bands the match model's trust and the second mixer's weight sets depend on.
const BANDS: usize = 16;
/// A fresh counter: probability one half, no observations.
const FRESH: u32 = 1 << 31;

/// Learning rates 65536 · 2 / (2n + 3).
fn rates(limit: u32) -> Vec<u32> {
    (0..=limit).map(|n| 65536 * 2 / (2 * n + 3)).collect()
}

/// A 22-bit probability of a 1 and a 10-bit count in one word.
#[inline]
fn p12(counter: u32) -> usize {
    (counter >> 20) as usize
}

#[inline]
fn learn(counter: &mut u32, bit: u32, rates: &[u32], limit: u32) {
    let n = *counter & 1023;
    let p = i64::from(*counter >> 10);
    let target = if bit == 1 { (1 << 22) - 1 } else { 0 };
    let p = p + (((target - p) * i64::from(rates[n as usize])) >> 16);
    *counter = ((p as u32) << 10) | (n + 1).min(limit);
}

/// The match length band: exact up to 11, then by powers of two.
fn band(len: usize) -> usize {
    match len {
        0..=11 => len,
        12..=15 => 12,
        16..=31 => 13,
        32..=63 => 14,
        _ => 15,
    }
}

/// Context mixing without a neural network, coded bit by bit (see the module docs).
pub struct Fast {
    info: ModelInfo,
    state: Option<Box<State>>,
}

impl Fast {
    /// Frees the tables of the last block (the next [`LanguageModel::start_block`] makes new
    /// ones): for a codec that runs this model only now and then, beside another.
    pub fn release(&mut self) {
        self.state = None;
    }

    /// The model; tables are allocated by [`LanguageModel::start_block`].
    pub fn new() -> Fast {
        let stretch = stretch_table();
        let params = format!("{PARAMS:?}");
        let squash_table: Vec<u8> = (-2047..=2047)
            .flat_map(|d| (squash(d) as u16).to_le_bytes())
            .collect();
        let stretch_bytes: Vec<u8> = stretch.iter().flat_map(|v| v.to_le_bytes()).collect();
        Fast {
            info: ModelInfo {
                name: NAME.to_string(),
                fingerprint: Fingerprint::of(&[
                    b"llmzip-fast",
                    params.as_bytes(),
                    &squash_table,
                    &stretch_bytes,
                ]),
                vocab_size: 256,
                bos: 0,
                backend: Backend {
                    device: "cpu".into(),
                    dtype: "int".into(),
                    platform: super::platform(),
                },
                max_context: None,
                default_window: 0,
                default_segment_tokens: super::RNN_SEGMENT_TOKENS,
            },
            state: None,
        }
    }
}

impl Default for Fast {
    fn default() -> Self {
        Fast::new()
    }
}

/// Everything one block learns.
struct State {
    stretch: Vec<i16>,
    rates: Vec<u32>,
    /// Hashed contexts' slots, `HASHED × 2^table_bits × SLOT`.
    tables: Vec<u32>,
    order0: [u32; 256],
    /// Each hashed context's hash at the start of the byte.
    hashes: [u64; HASHED],
    /// Each hashed context's slot for the current nibble (index into `tables`).
    slots: [usize; HASHED],
    /// The partial byte with a leading 1; the node within the current nibble, likewise.
    c0: u32,
    nibble: u32,
    bit: u32,
    /// The last eight bytes, the newest lowest.
    last: u64,
    word: u64,
    history: Vec<u8>,
    match_index: Vec<u32>,
    match_ptr: usize,
    match_len: usize,
    match_counters: [u32; 2 * BANDS],
    /// The expected bit and its counter, when the match model predicts at this node.
    match_slot: Option<usize>,
    mixer1: Vec<[i32; INPUTS]>,
    mixer2: Vec<[i32; INPUTS]>,
    inputs: [i16; INPUTS],
    set1: usize,
    set2: usize,
    st1: i32,
    st2: i32,
    apm1: Apm,
    apm2: Apm,
    apm_slots: (u32, u32),
}

impl State {
    fn new() -> State {
        let p = &PARAMS;
        let mut s = State {
            stretch: stretch_table(),
            rates: rates(p.limit),
            // Zeroed pages come from the kernel untouched: memory grows only as contexts come.
            tables: vec![0; HASHED << p.table_bits << 4],
            order0: [FRESH; 256],
            hashes: [0; HASHED],
            slots: [0; HASHED],
            c0: 1,
            nibble: 1,
            bit: 0,
            last: 0,
            word: 0,
            history: Vec::new(),
            match_index: vec![0; 1 << p.match_bits],
            match_ptr: 0,
            match_len: 0,
            match_counters: [FRESH; 2 * BANDS],
            match_slot: None,
            mixer1: vec![[p.initial_weight; INPUTS]; 256],
            mixer2: vec![[p.initial_weight; INPUTS]; BANDS * 8],
            inputs: [0; INPUTS],
            set1: 0,
            set2: 0,
            st1: 0,
            st2: 0,
            apm1: Apm::new(256, p.apm_rate),
            apm2: Apm::new(1 << 16, p.apm_rate),
            apm_slots: (0, 0),
        };
        s.byte_contexts();
        s
    }

    /// New context hashes after a byte (or at the start).
    fn byte_contexts(&mut self) {
        for (i, &order) in PARAMS.orders.iter().enumerate() {
            let mask = if order >= 8 {
                u64::MAX
            } else {
                (1u64 << (8 * order)) - 1
            };
            self.hashes[i] = mix64((self.last & mask) ^ ((i as u64 + 1) << 56));
        }
        self.hashes[HASHED - 1] = mix64(self.word ^ (0xfe << 56));
        self.nibble_slots();
    }

    /// Finds (or restarts) every hashed context's slot for the nibble that starts now.
    fn nibble_slots(&mut self) {
        let bits = PARAMS.table_bits;
        let c0 = u64::from(self.c0);
        for i in 0..HASHED {
            let key = mix64(self.hashes[i].wrapping_add(c0.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            let slot = ((i << bits) + (key as usize & ((1 << bits) - 1))) * SLOT;
            let check = (key >> 40) as u32 | 1;
            let cells = &mut self.tables[slot..slot + SLOT];
            if cells[0] != check {
                cells[0] = check;
                cells[1..].fill(FRESH);
            }
            self.slots[i] = slot;
        }
    }

    fn predict(&mut self) -> u32 {
        let st = |c: u32| self.stretch[p12(c)];
        let nib = self.nibble as usize;
        self.inputs[0] = st(self.order0[self.c0 as usize]);
        for i in 0..HASHED {
            self.inputs[i + 1] = st(self.tables[self.slots[i] + nib]);
        }
        // The match model, while the byte it predicts agrees with the bits so far.
        self.match_slot = None;
        let mut match_band = 0;
        if self.match_len > 0 {
            let predicted = u32::from(self.history[self.match_ptr]) | 0x100;
            if predicted >> (8 - self.bit) == self.c0 {
                let expected = (predicted >> (7 - self.bit)) & 1;
                match_band = band(self.match_len);
                let slot = match_band * 2 + expected as usize;
                self.match_slot = Some(slot);
                self.inputs[HASHED + 1] = st(self.match_counters[slot]);
            } else {
                self.inputs[HASHED + 1] = 0;
            }
        } else {
            self.inputs[HASHED + 1] = 0;
        }
        self.inputs[HASHED + 2] = 256;
        self.set1 = self.c0 as usize;
        self.set2 = match_band * 8 + self.bit as usize;
        self.st1 = mixer::dot(&self.inputs, &self.mixer1[self.set1]);
        self.st2 = mixer::dot(&self.inputs, &self.mixer2[self.set2]);
        let st = (self.st1 + self.st2) >> 1;
        let p = squash(st);
        let c1 = (self.last & 0xff) as usize;
        let (a1, s1) = self.apm1.predict(st, self.c0 as usize);
        let (a2, s2) = self.apm2.predict(st, self.c0 as usize | (c1 << 8));
        self.apm_slots = (s1, s2);
        let p = ((p + a1 + 2 * a2 + 2) >> 2) as u32;
        (p << 4).clamp(
            crate::coder::binary::MIN_P,
            65536 - crate::coder::binary::MIN_P,
        )
    }

    fn update(&mut self, bit: u32) {
        let (rates, limit) = (&self.rates, PARAMS.limit);
        learn(&mut self.order0[self.c0 as usize], bit, rates, limit);
        let nib = self.nibble as usize;
        for i in 0..HASHED {
            learn(&mut self.tables[self.slots[i] + nib], bit, rates, limit);
        }
        if let Some(slot) = self.match_slot {
            learn(&mut self.match_counters[slot], bit, rates, limit);
        }
        let how = Learning {
            shift: PARAMS.mix_shift,
            rate: UNIT_RATE,
            max_weight: 1 << 22,
            nearest: true,
        };
        mixer::train(
            &mut self.mixer1[self.set1],
            &self.inputs,
            self.st1,
            bit,
            how,
        );
        mixer::train(
            &mut self.mixer2[self.set2],
            &self.inputs,
            self.st2,
            bit,
            how,
        );
        self.apm1.update(self.apm_slots.0, bit);
        self.apm2.update(self.apm_slots.1, bit);

        self.c0 = (self.c0 << 1) | bit;
        self.nibble = (self.nibble << 1) | bit;
        self.bit += 1;
        if self.bit == 8 {
            self.end_byte((self.c0 & 0xff) as u8);
        } else if self.bit == 4 {
            self.nibble = 1;
            self.nibble_slots();
        }
    }

    fn end_byte(&mut self, byte: u8) {
        self.c0 = 1;
        self.nibble = 1;
        self.bit = 0;
        self.last = (self.last << 8) | u64::from(byte);
        if byte.is_ascii_alphabetic() {
            let b = u64::from(byte.to_ascii_lowercase());
            self.word = (self.word ^ b).wrapping_mul(0x100_0000_01B3);
        } else {
            self.word = 0;
        }
        self.history.push(byte);
        self.follow_match(byte);
        self.byte_contexts();
    }

    /// Extends the current match by the byte that came, or looks for a new one.
    fn follow_match(&mut self, byte: u8) {
        let p = &PARAMS;
        if self.match_len > 0 && self.history[self.match_ptr] == byte {
            self.match_len = (self.match_len + 1).min(65535);
            self.match_ptr += 1;
        } else {
            self.match_len = 0;
        }
        let pos = self.history.len();
        if pos < p.match_min {
            return;
        }
        let mut key = 0u64;
        for &b in &self.history[pos - p.match_min..] {
            key = (key << 8) | u64::from(b);
        }
        let index = (mix64(key) >> (64 - p.match_bits)) as usize;
        if self.match_len == 0 {
            let candidate = self.match_index[index] as usize;
            if candidate > 0 {
                let mut len = 0;
                while len < 32
                    && len < candidate
                    && self.history[candidate - 1 - len] == self.history[pos - 1 - len]
                {
                    len += 1;
                }
                if len >= p.match_min {
                    self.match_len = len;
                    self.match_ptr = candidate;
                }
            }
        }
        // Positions fit: a block holds at most format::MAX_BLOCK_SIZE bytes.
        self.match_index[index] = pos as u32;
    }
}

impl BitPredictor for Fast {
    fn predict(&mut self) -> u32 {
        self.state
            .as_mut()
            .expect("start_block comes before coding")
            .predict()
    }

    fn update(&mut self, bit: bool) {
        self.state
            .as_mut()
            .expect("start_block comes before coding")
            .update(u32::from(bit));
    }
}

impl LanguageModel for Fast {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &dyn Tokenizer {
        &ByteTokenizer
    }

    fn working_memory(&self, shape: &BatchShape) -> u64 {
        let p = &PARAMS;
        let tables = (HASHED as u64) << p.table_bits << 6;
        let apms = (256 + (1 << 16)) * 33 * 2;
        let mixers = (256 + BANDS as u64 * 8) * INPUTS as u64 * 4;
        // The history grows by doubling: up to twice the block.
        let history = shape.block_len.saturating_mul(2);
        tables + (4u64 << p.match_bits) + apms + mixers + history
    }

    fn start_block(&mut self, rows: usize) -> Result<()> {
        if rows != 1 {
            return Err(Error::InvalidSetting(format!(
                "{NAME} codes one stream per block, not {rows}"
            )));
        }
        // The old tables go first, so that their memory can be reused for the new ones
        // instead of fresh pages faulted in (which made speed vary by 3x between runs).
        self.state = None;
        self.state = Some(Box::new(State::new()));
        Ok(())
    }

    fn slide(&mut self, rows: usize) -> Result<()> {
        self.start_block(rows)
    }

    /// Not available: this model predicts bits (see [`LanguageModel::bits`]).
    fn step(&mut self, _inputs: &[u32]) -> Result<Vec<f32>> {
        Err(Error::InvalidSetting(format!(
            "{NAME} predicts one bit at a time; it cannot give whole distributions (nor be \
             wrapped in another model)"
        )))
    }

    fn bits(&mut self) -> Option<&mut dyn BitPredictor> {
        Some(self)
    }
}
