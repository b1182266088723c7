//! Bitwise context mixing (PAQ-style) on top of a byte-level model.
//!
//! A small recurrent model forgets quickly and knows nothing of the file at hand; counting
//! contexts learns the file's own repetitions (names, phrases, spelling). This model *learns* how
//! much to trust each source, the way lpaq and zpaq do (an earlier PPM-style blend with fixed
//! rules, `gru-mix`, was 0.14 bits per byte worse on alice29 and was removed before archives
//! were promised to keep decoding):
//!
//! - Each byte is seen as 8 binary decisions, most significant bit first; the 255 inner nodes of
//!   that binary tree are where predictions are made and mixed.
//! - Inputs at a node: the inner model's probability of the bit (its distribution summed over
//!   the two subtrees); for each context (bytes of order 1–6 and 8, the current word, the current
//!   and previous word) the counts of the bytes seen after it in the two subtrees, turned into a
//!   probability by an adaptive table indexed by the quantized count pair (a "state map": it
//!   learns, for example, how often a context that has only ever seen one byte is right); and a
//!   match model that follows the last occurrence of the preceding 7 bytes and predicts the byte
//!   that came next there, trusted according to how long the match has held.
//! - Three linear mixers in the logistic domain, their weights chosen by the node, by the
//!   highest order with counts, and by the previous byte, trained online to minimize coding cost
//!   and averaged; then an adaptive probability map (APM, secondary estimation) indexed by the
//!   previous byte and the node.
//! - All choices were made on the validation split (`data/valid/`), never on test files
//!   (docs/training.md lists them with their effect).
//!
//! The codec needs a whole distribution per step, not one bit at a time, so every step evaluates
//! the tree top down (the probability of a byte is the product along its path) and keeps what it
//! needs to learn from the 8 nodes on the path of the byte that actually comes. Nodes reached
//! with probability below 2^-12 take the inner model's split unmixed: they hold few of the bytes
//! that come, and skipping them makes the mix several times cheaper.
//!
//! Determinism: all tables, weights and probabilities are integers (12-bit probabilities, 16-bit
//! fixed-point weights), with lpaq's integer squash and its exact inverse; only the final product
//! along each path is `f32`, computed in a fixed order. Counts and learned tables are shared by
//! all rows of a block and updated in row order at every step, so the decoder, which sees the
//! same symbols in the same order, learns the same things. Every step first predicts all rows
//! from the state left by the previous step (rows are independent then, so they are predicted in
//! parallel), then learns from the new symbols row by row. Everything resets with each block, so
//! memory is bounded by the block size: context tables grow with the distinct contexts seen. Peak
//! resident memory of the whole process for one 1 MiB block: 133 MiB for dictionary text (GCIDE),
//! 401 MiB for random base64 (nearly every context new); `--block-size` trades ratio for memory.
//! The model reports a worst case per byte of block ([`BYTES_PER_BYTE`]), which the codec checks
//! against its memory limit before a block is coded or decoded. (Fixed-size hashed tables, as in
//! lpaq, would bound memory independently of the block size; that is a new model version, not a
//! change to this one.)
//!
//! Versions (each its own name and fingerprint; older archives keep decoding): `gru-cm` as
//! above; `gru-cm2`, the same mixing over tables of fixed size ([`BOUNDED`]) whose statistics
//! survive a context-window slide; `gru-cm3`, three more word contexts; `gru-cm4`,
//! how the mixers learn ([`TUNING`]): a learning rate per weight set that starts high and settles,
//! a fourth mixer chosen by the match model's state, a second "confidence" input per context, and
//! a match history of fixed size, so that nothing in it grows with the block; `gru-cm5`
//! ([`REFINE`]; the default as `gru2-cm5`, over the GRU trained on), a second-layer mixer that
//! learns how to weigh the four mixers (one weight set per match state and depth) instead of
//! averaging them, and three column contexts (position in the line, the bytes above), which
//! text laid out in lines predicts its breaks, indentation and aligned fields from. New contexts and
//! inputs come as extra mixer inputs that older versions leave at zero: a zero input adds nothing
//! to a sum and its weight never moves, so one piece of code computes every version exactly.
//!
//! Identity: every constant that changes a prediction lives in [`PARAMS`] (and a version's
//! [`BOUNDED`], [`TUNING`], [`REFINE`]), and the fingerprint
//! hashes its `Debug` form together with the squash and count-level tables, so a changed value
//! gives a new fingerprint and old archives are refused by name instead of decoded wrongly.

use rayon::prelude::*;

use super::{byte_wrapper_info, check_step, last_of_rows, BatchShape, LanguageModel, ModelInfo};
use crate::mixing::apm::Apm;
use crate::mixing::context::{mix64, DirectTable, HashedTable, Store, Table};
use crate::mixing::logistic::{squash, stretch_table};
use crate::mixing::match_model::{self, Match, MatchModel};
use crate::mixing::mixer;
use crate::mixing::state_map::{self, count_level, count_state, StateMap};
use crate::tokenization::Tokenizer;
use crate::Result;

/// Every constant that changes what the model predicts; hashed into its fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Params {
    /// Byte-context orders with successor counts.
    pub orders: [usize; 7],
    /// The match model predicts after a repeat of this many bytes.
    pub match_min: usize,
    /// Nodes reached with less probability are left to the inner model.
    pub min_mass: f32,
    /// Mixer learning rate: weights move by `input · error >> mix_shift`.
    pub mix_shift: i32,
    /// Mixer weights stay within ±max_weight (16.16 fixed point).
    pub max_weight: i32,
    /// Initial mixer weights: the inner model's input, every other input.
    pub initial_weights: (i32, i32),
    /// Share of the APM in the final probability, in quarters.
    pub apm_weight: i32,
    /// APM adaptation rate (shift).
    pub apm_rate: i32,
    /// State maps adapt at rate 1/(n + 1.5), n capped here.
    pub state_limit: u32,
    /// The match model's state map starts at these 16-bit probabilities that the expected bit
    /// comes (it is 1, it is 0).
    pub match_initial: (u16, u16),
    /// Segment length the codec aims for (enters the schedule).
    pub segment_tokens: u64,
}

/// The parameters of `gru-cm` (and of any `DIR-cm`). Chosen on the validation split
/// (docs/training.md). Changing any of them makes a new model: archives made with the old values
/// are then refused by fingerprint, so a change here must come with a new model name.
pub(crate) const PARAMS: Params = Params {
    orders: [1, 2, 3, 4, 5, 6, 8],
    match_min: 7,
    min_mass: 1.0 / 4096.0,
    mix_shift: 12,
    max_weight: 1 << 24,
    initial_weights: (1 << 16, 1 << 14),
    apm_weight: 3,
    apm_rate: 7,
    state_limit: 255,
    match_initial: (58982, 6554),
    segment_tokens: 4 << 10,
};

/// What `gru-cm2` adds to [`PARAMS`] (hashed into its fingerprint, not into `gru-cm`'s):
/// fixed-size tables, so memory no longer grows with the block, and statistics that survive a
/// context-window slide.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bounded {
    /// Orders up to this one count in direct tables (one place per context, nothing forgotten).
    pub direct_orders: usize,
    /// Every other context kind counts in a hashed table of 2^table_bits slots.
    pub table_bits: u32,
    /// The match model's index has 2^match_bits entries.
    pub match_bits: u32,
}

/// The tables of `gru-cm2` (chosen on the validation texts, docs/training.md). Memory: 32 MiB of
/// direct tables, 7 × 11.5 MiB hashed, 16 MiB of match index, at most; pages are touched only as
/// contexts arrive.
pub(crate) const BOUNDED: Bounded = Bounded {
    direct_orders: 2,
    table_bits: 18,
    match_bits: 21,
};

/// What `gru-cm4` changes in `gru-cm3` (hashed into its fingerprint, not into the older
/// models'): how fast the mixers learn, a fourth mixer, and a second input per model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tuning {
    /// Mixer learning rate of a weight set after `u` updates, in sixteenths of `gru-cm`'s fixed
    /// step: `rate_floor + rate_boost · rate_halfway / (rate_halfway + u)`. A set learns fast
    /// while it is new and settles as it sees more; rarely chosen sets stay quick.
    pub rate_floor: i32,
    pub rate_boost: i64,
    pub rate_halfway: i64,
    /// Confidence inputs: a context that has seen only one side of a node adds ± its count
    /// level times this (a linear vote that the mixer weighs apart from the state map's
    /// probability); the match model adds its probability linearly, (p − 1/2) · 1024.
    pub confidence_scale: i16,
    /// The match model keeps this many of the block's last bytes (all rows together), so that
    /// its memory is fixed whatever the block size.
    pub match_history: u64,
}

/// The tuning of `gru-cm4` (chosen on the validation texts, docs/training.md).
pub(crate) const TUNING: Tuning = Tuning {
    rate_floor: 10,
    rate_boost: 128,
    rate_halfway: 512,
    confidence_scale: 64,
    match_history: 16 << 20,
};

impl Tuning {
    /// The learning rate of a weight set that has been updated `updates` times.
    fn rate(&self, updates: u32) -> i32 {
        let boost = self.rate_boost * self.rate_halfway / (self.rate_halfway + i64::from(updates));
        self.rate_floor + boost as i32
    }
}

/// What `gru-cm5` changes in `gru-cm4` (hashed into its fingerprint, not into the older
/// models'): a second-layer mixer instead of the average of the four, and column contexts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refine {
    /// The second-layer mixer's learning rate: weights move by `input · error >> final_shift`,
    /// rounded to nearest.
    pub final_shift: i32,
    /// Column contexts look up the first this many bytes of the line above.
    pub line_bytes: usize,
}

/// The refinements of `gru-cm5` (chosen on the validation texts, docs/training.md).
pub(crate) const REFINE: Refine = Refine {
    final_shift: 16,
    line_bytes: 256,
};

/// Inputs of the second-layer mixer: the four mixers, the inner model, a bias.
const FINAL_INPUTS: usize = 6;

/// Weight sets of `gru-cm4`'s fourth mixer: the match model's state (no prediction at this
/// node, or the match length in four bands) × bit depth.
const MATCH_MIXER_SETS: usize = 5 * 8;

impl Bounded {
    /// Most bytes the fixed tables take, for `contexts` kinds of context.
    fn table_bytes(&self, contexts: usize) -> u64 {
        let mut total = match_model::index_bytes(self.match_bits);
        for k in 0..contexts {
            total += match ORDERS.get(k) {
                Some(&order) if order <= self.direct_orders => DirectTable::bytes(order),
                _ => HashedTable::bytes(self.table_bits),
            };
        }
        total
    }
}

/// Byte-context orders with successor counts.
const ORDERS: [usize; 7] = PARAMS.orders;
/// Contexts of `gru-cm` and `gru-cm2`: the byte orders, then the current word (letters only)
/// and the current word with the previous one.
const BASE_CONTEXTS: usize = ORDERS.len() + 2;
/// Contexts only `gru-cm3` uses (word triples); the others leave their inputs at zero, which
/// changes nothing in their sums or their mixers' learning.
const EXTRA_CONTEXTS: usize = 3;
/// Contexts only `gru-cm5` uses: the position in the line with the byte above it, the byte
/// above with the last byte and the byte above-right, the position in the line with the current
/// word. The others leave their inputs at zero.
const COLUMN_CONTEXTS: usize = 3;
/// Where the column contexts start.
const COLUMNS_AT: usize = BASE_CONTEXTS + EXTRA_CONTEXTS;
/// Contexts per row.
const CONTEXTS: usize = COLUMNS_AT + COLUMN_CONTEXTS;
/// Models with a state map: the contexts, then the match model.
const MODELS: usize = CONTEXTS + 1;
/// The match model predicts after a repeat of this many bytes.
const MATCH_MIN: usize = PARAMS.match_min;
/// Mixer inputs from the inner model: its probability of the bit.
const INNER_INPUTS: usize = 1;
/// Where the confidence inputs (`gru-cm4`; zero in the older models) start: after the inner
/// model, one input per context, the match model and a constant bias.
const CONFIDENCE_AT: usize = INNER_INPUTS + MODELS + 1;
/// Mixer inputs: the inner model, one per context, the match model, a constant bias, then one
/// confidence input per context and the match model's. A zero input adds nothing to a sum and
/// its weight never moves, so the older models predict exactly as before.
const INPUTS: usize = CONFIDENCE_AT + MODELS;
/// Segment length the codec aims for. Counts are shared by all rows, so shorter segments cost
/// only the inner model's context at each segment start, while more rows make its batched steps
/// cheaper per byte: on the first 150 KB of the validation file, 4 K instead of 8 K tokens cost
/// 0.003 bits per byte and gave 28 % more speed (docs/training.md).
pub const SEGMENT_TOKENS: u64 = PARAMS.segment_tokens;

/// Working memory per row: the per-node vectors of [`RowState`] (about 17 KB) and the
/// prediction's stack arrays, rounded up.
const ROW_BYTES: u64 = 32 << 10;

/// Upper bound of the table memory that one byte of a block can add. Learning a byte touches
/// each of the 9 context tables once: a new entry costs at most 57 bytes (a hash-map bucket of
/// 25 bytes at the lowest load factor after a doubling, 7/16), a new successor of a known
/// context at most 40 (a boxed list and its doubling growth), and one table may be mid-resize
/// (+29); the match index adds a bucket (39) and the row text one byte, doubled by growth.
/// 9 × 57 + 29 + 39 + 2 = 583, rounded up. Measured: 401 bytes per byte on random base64, the
/// worst case found (nearly every context new).
const BYTES_PER_BYTE: u64 = 600;

/// Weight sets of the second mixer: (highest order with counts, or none) × deterministic × depth.
const SECOND_MIXER_SETS: usize = (ORDERS.len() + 1) * 2 * 8;

/// Marks a node left to the inner model (its reach was below the threshold).
const NOT_MIXED: i32 = i32::MIN;

/// Nodes reached with less probability than this are left to the inner model: mixing them
/// would cost time and hardly change the cost of coding (measured on the validation split: no
/// change in the fourth decimal of bits per byte).
const MIN_MASS: f32 = PARAMS.min_mass;
/// Mixer learning rate: weights move by `input · error >> MIX_SHIFT`.
const MIX_SHIFT: i32 = PARAMS.mix_shift;
/// Mixer weights stay within ±MAX_WEIGHT (16.16 fixed point), so sums cannot overflow.
const MAX_WEIGHT: i32 = PARAMS.max_weight;
/// Share of the APM in the final probability, in quarters.
const APM_WEIGHT: i32 = PARAMS.apm_weight;
/// State maps adapt at rate 1/(n + 1.5), n capped here.
const STATE_LIMIT: u32 = PARAMS.state_limit;
/// APM adaptation rate (shift).
const APM_RATE: i32 = PARAMS.apm_rate;

/// What one row remembers between predicting a byte and learning from it.
#[derive(Clone)]
struct RowState {
    /// Last up to 8 bytes, newest in the low byte, and how many are valid.
    history: u64,
    len: usize,
    /// Hash of the current word (letters, lowercased) and of the previous word.
    word: u64,
    prev_word: u64,
    /// The word before the previous one (`gru-cm3`).
    prev2_word: u64,
    /// `gru-cm5`: the current line and the one before it (their first
    /// [`Refine::line_bytes`]), and the position in the line.
    line: Vec<u8>,
    above: Vec<u8>,
    column: u32,
    /// Context keys of the last prediction, under which the next byte is counted; `None` where
    /// the history is too short.
    keys: [Option<u64>; CONTEXTS],
    /// Per node (index 1..256) of the last prediction: mixer inputs, state-map slots (u16::MAX:
    /// none), the averaged mixer output (NOT_MIXED: left to the inner model), the three mixers'
    /// outputs, the second mixer's weight set, and the APM slot.
    inputs: Vec<[i16; INPUTS]>,
    states: Vec<[u16; MODELS]>,
    mixed: Vec<i32>,
    mixer_out: Vec<[i32; 4]>,
    select: Vec<u16>,
    /// The fourth mixer's weight set (`gru-cm4`).
    select4: Vec<u8>,
    apm_slot: Vec<u32>,
    /// `gru-cm5`: the second-layer mixer's output (its weight set is the fourth mixer's).
    final_out: Vec<i32>,
    predicted: bool,
    started: bool,
    /// Where the match model points.
    matched: Match,
}

impl RowState {
    fn new() -> RowState {
        RowState {
            history: 0,
            len: 0,
            word: 0,
            prev_word: 0,
            prev2_word: 0,
            line: Vec::new(),
            above: Vec::new(),
            column: 0,
            keys: [None; CONTEXTS],
            inputs: vec![[0; INPUTS]; 256],
            states: vec![[u16::MAX; MODELS]; 256],
            mixed: vec![0; 256],
            mixer_out: vec![[0; 4]; 256],
            select: vec![0; 256],
            select4: vec![0; 256],
            apm_slot: vec![0; 256],
            final_out: vec![0; 256],
            predicted: false,
            started: false,
            matched: Match::default(),
        }
    }

    /// The keys of the current contexts; orders up to `direct_orders` as their raw bytes (for
    /// direct tables), all others hashed. The word triples with `extras`, the column contexts
    /// with `columns`.
    fn context_keys(
        &self,
        direct_orders: usize,
        extras: bool,
        columns: bool,
    ) -> [Option<u64>; CONTEXTS] {
        let mut keys = [None; CONTEXTS];
        for (k, &order) in ORDERS.iter().enumerate() {
            if self.len >= order {
                let mask = if order >= 8 {
                    u64::MAX
                } else {
                    (1u64 << (8 * order)) - 1
                };
                keys[k] = Some(if order <= direct_orders {
                    self.history & mask
                } else {
                    mix64((self.history & mask) ^ ((k as u64 + 1) << 58))
                });
            }
        }
        keys[ORDERS.len()] = Some(mix64(self.word ^ (0xA1 << 56)));
        keys[ORDERS.len() + 1] = Some(mix64(
            self.word
                .wrapping_add(self.prev_word.wrapping_mul(0x2545_F491_4F6C_DD1D))
                ^ (0xB2 << 56),
        ));
        if extras {
            // Word contexts beyond the pair: the current word with the two before it, the
            // current word with the one before the previous, and the two previous words with
            // the last byte (what follows a word pair). Chosen on the validation texts.
            let b = BASE_CONTEXTS;
            let (w, w1, w2) = (self.word, self.prev_word, self.prev2_word);
            keys[b] = Some(mix64(
                w1.wrapping_add(w2.wrapping_mul(0x9E37_79B9))
                    .wrapping_add(self.history & 0xFF)
                    ^ (0xD9 << 56),
            ));
            keys[b + 1] = Some(mix64(
                w.wrapping_add(w2.wrapping_mul(0x9E37_79B9)) ^ (0xD8 << 56),
            ));
            keys[b + 2] = Some(mix64(
                w.wrapping_add(w1.wrapping_mul(0x2545_F491_4F6C_DD1D))
                    .wrapping_add(w2.wrapping_mul(0x9E37_79B9))
                    ^ (0xD6 << 56),
            ));
        }
        if columns {
            // Chosen on the validation texts: with the line's position and the bytes above,
            // text laid out in lines (wrapped prose, code, tables) predicts its line breaks,
            // indentation and aligned columns.
            let col = u64::from(self.column.min(255));
            let at = |i: u32| u64::from(self.above.get(i as usize).copied().unwrap_or(0));
            let above = at(self.column);
            let last = self.history & 0xFF;
            let word = self.word.wrapping_mul(0x9E37_79B9) << 16;
            let b = COLUMNS_AT;
            keys[b] = Some(mix64(col | above << 8 | (0xC1 << 56)));
            keys[b + 1] = Some(mix64(
                above | last << 8 | at(self.column.saturating_add(1)) << 16 | (0xC3 << 56),
            ));
            keys[b + 2] = Some(mix64(col | word | (0xC4 << 56)));
        }
        keys
    }

    /// Extends the histories with a byte; `line_bytes` of each line are kept for the column
    /// contexts (none without them).
    fn push(&mut self, byte: u8, line_bytes: usize) {
        self.history = (self.history << 8) | u64::from(byte);
        self.len = (self.len + 1).min(8);
        if byte == b'\n' {
            std::mem::swap(&mut self.line, &mut self.above);
            self.line.clear();
            self.column = 0;
        } else {
            if self.line.len() < line_bytes {
                self.line.push(byte);
            }
            self.column = self.column.saturating_add(1);
        }
        if byte.is_ascii_alphabetic() {
            let c = u64::from(byte.to_ascii_lowercase());
            self.word = mix64(self.word.wrapping_add(c).wrapping_mul(0x100_0000_01B3));
        } else if self.word != 0 {
            self.prev2_word = self.prev_word;
            self.prev_word = self.word;
            self.word = 0;
        }
    }
}

/// The tables shared by all rows, read while predicting and written while learning.
struct Shared {
    tables: Vec<Store>,
    /// Orders keyed by their raw bytes (direct tables); 0 for `gru-cm`.
    direct_orders: usize,
    /// Whether the extra contexts are used (`gru-cm3`).
    extras: bool,
    maps: Vec<StateMap>,
    matches: MatchModel,
    /// Mixer weights (16.16 fixed point), one set per node.
    weights: Vec<[i32; INPUTS]>,
    /// Second mixer: one set per (highest order with counts at the node, whether that order
    /// saw only one side, bit depth).
    weights2: Vec<[i32; INPUTS]>,
    /// Third mixer: one set per previous byte.
    weights3: Vec<[i32; INPUTS]>,
    /// `gru-cm4`: its tuning, the fourth mixer's sets (by match state and depth), and how often
    /// each set of the four mixers has been updated (for its learning rate).
    tuning: Option<Tuning>,
    weights4: Vec<[i32; INPUTS]>,
    updates: [Vec<u32>; 4],
    apm: Apm,
    /// `gru-cm5`: its refinements and the second-layer mixer's weights (one set per match
    /// state and depth, as the fourth mixer's).
    refine: Option<Refine>,
    final_weights: Vec<[i32; FINAL_INPUTS]>,
    stretch: Vec<i16>,
    /// 65536 / (n + 1.5) for state-map updates.
    recip: Vec<u32>,
}

impl Shared {
    fn new(
        rows: usize,
        bounded: Option<&Bounded>,
        extras: bool,
        tuning: Option<&Tuning>,
        refine: Option<&Refine>,
        recycled: Vec<Store>,
    ) -> Shared {
        let tuned = tuning.is_some();
        let sets = |n: usize| if tuned { n } else { 0 };
        let mut w = [PARAMS.initial_weights.1; INPUTS];
        w[0] = PARAMS.initial_weights.0;
        let mut old = recycled.into_iter();
        let tables = (0..CONTEXTS)
            .map(|k| match (bounded, ORDERS.get(k), old.next()) {
                (None, ..) => Store::Growing(Table::default()),
                // Contexts a version does not use: an empty table that is never filled.
                (Some(_), ..) if k >= BASE_CONTEXTS && !extras => Store::Growing(Table::default()),
                (Some(_), ..) if k >= COLUMNS_AT && refine.is_none() => {
                    Store::Growing(Table::default())
                }
                (Some(b), Some(&order), old) if order <= b.direct_orders => {
                    Store::Direct(DirectTable::reuse(old, order))
                }
                (Some(b), _, old) => Store::Hashed(HashedTable::reuse(old, b.table_bits)),
            })
            .collect();
        Shared {
            tables,
            direct_orders: bounded.map_or(0, |b| b.direct_orders),
            extras,
            maps: {
                // The match model's states are (length, expected bit): start by trusting the
                // expected bit 9 times in 10.
                let mut maps = vec![StateMap::new(); MODELS];
                for s in 0..32 {
                    maps[CONTEXTS].p[s] = if s & 1 == 1 {
                        PARAMS.match_initial.0
                    } else {
                        PARAMS.match_initial.1
                    };
                }
                maps
            },
            matches: match (bounded, tuning) {
                (None, _) => MatchModel::new(rows, MATCH_MIN),
                (Some(b), None) => MatchModel::bounded(rows, MATCH_MIN, b.match_bits),
                (Some(b), Some(t)) => {
                    MatchModel::bounded_history(rows, MATCH_MIN, b.match_bits, t.match_history)
                }
            },
            weights: vec![w; 256],
            weights2: vec![w; SECOND_MIXER_SETS],
            weights3: vec![w; 256],
            tuning: tuning.cloned(),
            weights4: vec![w; sets(MATCH_MIXER_SETS)],
            updates: [
                vec![0; sets(256)],
                vec![0; sets(SECOND_MIXER_SETS)],
                vec![0; sets(256)],
                vec![0; sets(MATCH_MIXER_SETS)],
            ],
            apm: Apm::new(256 * 256, APM_RATE),
            refine: refine.cloned(),
            // The average of the four mixers to start with.
            final_weights: vec![
                [1 << 14, 1 << 14, 1 << 14, 1 << 14, 0, 0];
                if refine.is_some() {
                    MATCH_MIXER_SETS
                } else {
                    0
                }
            ],
            stretch: stretch_table(),
            recip: state_map::rates(STATE_LIMIT),
        }
    }

    /// Predicts one row's next byte from the inner model's distribution `inner`, writes the
    /// byte distribution into `out`, and keeps in `row` what learning from the byte will need.
    fn predict(&self, row: &mut RowState, inner: &[f32], out: &mut [f32]) {
        row.keys = row.context_keys(self.direct_orders, self.extras, self.refine.is_some());
        // Every context's lookup is a likely cache miss: start them all before the first.
        for (table, key) in self.tables.iter().zip(&row.keys) {
            if let Some(key) = *key {
                table.prefetch(key);
            }
        }
        // Subtree sums of the inner distribution: node n covers leaves below it (leaves 256..511).
        let mut tree = [0f32; 512];
        for (b, &p) in inner.iter().enumerate() {
            tree[256 + b] = p.max(0.0);
        }
        for n in (1..256).rev() {
            tree[n] = tree[2 * n] + tree[2 * n + 1];
        }
        // Successor counts of each context, summed per subtree.
        let mut counts = [[0u32; 512]; CONTEXTS];
        let mut single = [false; CONTEXTS];
        for (k, key) in row.keys.iter().enumerate() {
            let Some(key) = *key else { continue };
            let counts = &mut counts[k];
            let seen = self.tables[k].visit(key, |b, c| {
                let mut n = 256 + b as usize;
                while n > 1 {
                    counts[n] = counts[n].saturating_add(c);
                    n >>= 1;
                }
            });
            single[k] = seen == 1;
        }
        let prev = (row.history & 0xFF) as usize;
        // The match model's next byte, as a leaf index.
        let expected = self
            .matches
            .expected(&row.matched)
            .map(|b| 256 + b as usize);
        // Nodes top down (a parent before its children), so each node knows the probability of
        // reaching it. Nodes the mix would hardly change the cost of are left to the inner model.
        let mut prob = [0f32; 512];
        prob[1] = 1.0;
        for n in 1..256 {
            let (s0, s1) = (tree[2 * n], tree[2 * n + 1]);
            let q = if s0 + s1 > 0.0 {
                ((s1 / (s0 + s1)) * 4096.0) as i32
            } else {
                2048
            };
            let q = q.clamp(1, 4095);
            let p1 = if prob[n] < MIN_MASS {
                row.mixed[n] = NOT_MIXED;
                q
            } else {
                let inputs = &mut row.inputs[n];
                let states = &mut row.states[n];
                inputs[0] = self.stretch[q as usize];
                let depth = n.ilog2() as usize;
                let mut top = 0usize;
                let mut top_det = 0usize;
                for k in 0..CONTEXTS {
                    let (n0, n1) = (counts[k][2 * n], counts[k][2 * n + 1]);
                    inputs[CONFIDENCE_AT + k] = 0;
                    if n0 + n1 == 0 {
                        inputs[INNER_INPUTS + k] = 0;
                        states[k] = u16::MAX;
                    } else {
                        if k < ORDERS.len() {
                            top = k + 1;
                            top_det = usize::from(n0 == 0 || n1 == 0);
                        }
                        let s = count_state(single[k], n0, n1);
                        states[k] = s as u16;
                        inputs[INNER_INPUTS + k] = self.stretch[(self.maps[k].p[s] >> 4) as usize];
                        if let (Some(t), true) = (&self.tuning, n0 == 0 || n1 == 0) {
                            let level = count_level(n0 + n1) as i16 * t.confidence_scale;
                            inputs[CONFIDENCE_AT + k] = if n1 > 0 { level } else { -level };
                        }
                    }
                }
                let m = CONTEXTS;
                inputs[INNER_INPUTS + m] = 0;
                inputs[CONFIDENCE_AT + m] = 0;
                states[m] = u16::MAX;
                if let Some(e) = expected {
                    if e >> (8 - depth) == n {
                        let bit = (e >> (7 - depth)) & 1;
                        let st = (row.matched.len.min(15) as usize) * 2 + bit;
                        states[m] = st as u16;
                        let p = i32::from(self.maps[m].p[st] >> 4);
                        inputs[INNER_INPUTS + m] = self.stretch[p as usize];
                        if self.tuning.is_some() {
                            inputs[CONFIDENCE_AT + m] = ((p - 2048) >> 2) as i16;
                        }
                    }
                }
                inputs[CONFIDENCE_AT - 1] = 256;
                let sel = (top * 2 + top_det) * 8 + depth;
                row.select[n] = sel as u16;
                let st1 = mixer::dot(inputs, &self.weights[n]);
                let st2 = mixer::dot(inputs, &self.weights2[sel]);
                let st3 = mixer::dot(inputs, &self.weights3[prev]);
                let st = if self.tuning.is_some() {
                    let band = if states[m] == u16::MAX {
                        0
                    } else {
                        1 + row.matched.len.min(15) as usize / 4
                    };
                    let sel4 = band * 8 + depth;
                    row.select4[n] = sel4 as u8;
                    let st4 = mixer::dot(inputs, &self.weights4[sel4]);
                    row.mixer_out[n] = [st1, st2, st3, st4];
                    if self.refine.is_some() {
                        let x = final_inputs(&row.mixer_out[n], inputs[0]);
                        let f = mixer::dot(&x, &self.final_weights[sel4]);
                        row.final_out[n] = f;
                        f
                    } else {
                        (st1 + st2 + st3 + st4) / 4
                    }
                } else {
                    row.mixer_out[n] = [st1, st2, st3, 0];
                    (st1 + st2 + st3) / 3
                };
                row.mixed[n] = st;
                let pm = squash(st);
                let (pa, slot) = self.apm.predict(st, prev * 256 + n);
                row.apm_slot[n] = slot;
                ((pm * (4 - APM_WEIGHT) + pa * APM_WEIGHT) >> 2).clamp(1, 4095)
            };
            let p = p1 as f32 / 4096.0;
            prob[2 * n + 1] = prob[n] * p;
            prob[2 * n] = prob[n] * (1.0 - p);
        }
        out.copy_from_slice(&prob[256..512]);
        row.predicted = true;
    }

    /// Learns from the byte that followed a row's last prediction.
    fn learn(&mut self, index: usize, row: &mut RowState, byte: u8) {
        if row.predicted {
            let prev = (row.history & 0xFF) as usize;
            let mut n = 1usize;
            for i in (0..8).rev() {
                if row.mixed[n] == NOT_MIXED {
                    break;
                }
                let bit = u32::from((byte >> i) & 1);
                let inputs = &row.inputs[n];
                let [st1, st2, st3, st4] = row.mixer_out[n];
                let chosen = [
                    n,
                    usize::from(row.select[n]),
                    prev,
                    usize::from(row.select4[n]),
                ];
                let sets = [
                    (&mut self.weights[n], st1),
                    (&mut self.weights2[chosen[1]], st2),
                    (&mut self.weights3[prev], st3),
                ];
                let mixers = if self.tuning.is_some() { 4 } else { 3 };
                let fourth = self.weights4.get_mut(chosen[3]).map(|w| (w, st4));
                for (m, (weights, st)) in sets.into_iter().chain(fourth).enumerate().take(mixers) {
                    let rate = match &self.tuning {
                        None => mixer::UNIT_RATE,
                        Some(t) => {
                            let u = &mut self.updates[m][chosen[m]];
                            let rate = t.rate(*u);
                            *u = u.saturating_add(1);
                            rate
                        }
                    };
                    let how = mixer::Learning {
                        shift: MIX_SHIFT,
                        rate,
                        max_weight: MAX_WEIGHT,
                        nearest: false,
                    };
                    mixer::train(weights, inputs, st, bit, how);
                }
                for (k, &s) in row.states[n].iter().enumerate() {
                    if s != u16::MAX {
                        self.maps[k].update(s as usize, bit, &self.recip, STATE_LIMIT);
                    }
                }
                self.apm.update(row.apm_slot[n], bit);
                if let Some(r) = &self.refine {
                    let x = final_inputs(&row.mixer_out[n], inputs[0]);
                    let w = &mut self.final_weights[chosen[3]];
                    let how = mixer::Learning {
                        shift: r.final_shift,
                        rate: mixer::UNIT_RATE,
                        max_weight: MAX_WEIGHT,
                        nearest: true,
                    };
                    mixer::train(w, &x, row.final_out[n], bit, how);
                }
                n = 2 * n + bit as usize;
            }
        }
        for (k, key) in row.keys.iter().enumerate() {
            if let Some(key) = *key {
                self.tables[k].count(key, byte);
            }
        }
        self.matches
            .learn(index, &mut row.matched, row.history, row.len, byte);
    }
}

/// The second-layer mixer's inputs: the four mixers' outputs, the inner model's stretched
/// probability, a bias.
fn final_inputs(out: &[i32; 4], inner: i16) -> [i16; FINAL_INPUTS] {
    // Mixer outputs are clamped to ±2047, so they fit.
    [
        out[0] as i16,
        out[1] as i16,
        out[2] as i16,
        out[3] as i16,
        inner,
        256,
    ]
}

/// What identifies the model's arithmetic: the parameters, and the fixed tables computed from
/// code (squash, count levels, the state maps' initial values, the state-map rates).
fn identity(params: &Params) -> String {
    let squash: Vec<i32> = (-2048..=2048).map(squash).collect();
    let levels: Vec<usize> = (0..=256).map(count_level).collect();
    let initial = StateMap::new().p;
    format!("bitmix-2 {params:?} squash={squash:?} levels={levels:?} statemap={initial:?}")
}

/// `gru-cm2`'s identity: `gru-cm`'s, the fixed tables, and what a slide keeps.
fn identity_bounded(params: &Params, bounded: &Bounded) -> String {
    format!(
        "bitmix-3 {} {bounded:?} slide=keeps-statistics {}",
        identity(params),
        crate::mixing::context::hashed_layout()
    )
}

/// `gru-cm3`'s identity: `gru-cm2`'s and the extra contexts.
fn identity_extended() -> String {
    format!(
        "{} extras=words(w1+w2+byte,w+w2,w+w1+w2)",
        identity_bounded(&PARAMS, &BOUNDED)
    )
}

/// `gru-cm4`'s identity: `gru-cm3`'s and the tuning.
fn identity_tuned(tuning: &Tuning) -> String {
    format!("{} tuning={tuning:?}", identity_extended())
}

/// `gru-cm5`'s identity: `gru-cm4`'s, the refinements, and the column contexts.
fn identity_refined(refine: &Refine) -> String {
    format!(
        "{} refine={refine:?} final=by-match-state-x-depth(4 mixers+inner+bias,rounded) \
         columns=(col+above,above+last+above-right,col+word)",
        identity_tuned(&TUNING)
    )
}

/// A byte-level model with bitwise context mixing on top.
pub struct BitMixed {
    inner: Box<dyn LanguageModel>,
    info: ModelInfo,
    /// `None` for `gru-cm`: tables that grow, statistics dropped at a slide.
    bounded: Option<Bounded>,
    /// The extra contexts (`gru-cm3` and later).
    extras: bool,
    /// `gru-cm4`'s learning.
    tuning: Option<Tuning>,
    /// `gru-cm5`'s refinements.
    refine: Option<Refine>,
    shared: Shared,
    rows: Vec<RowState>,
}

/// The mixing versions, each its own name suffix and fingerprint (older archives keep
/// decoding with their version). Each adds to the one before; the parts a version lacks are
/// mixer inputs left at zero, so one piece of code computes every version exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `-cm`: tables that grow with the block, statistics dropped at a window slide.
    Cm1,
    /// `-cm2`: fixed-size tables ([`BOUNDED`]) whose statistics survive a slide.
    Cm2,
    /// `-cm3`: three more word contexts.
    Cm3,
    /// `-cm4`: per-set learning rates, a fourth mixer, confidence inputs ([`TUNING`]).
    Cm4,
    /// `-cm5`: a second-layer mixer and column contexts ([`REFINE`]).
    Cm5,
}

impl Version {
    /// Every version, newest first (so that `-cm5` is tried before `-cm`).
    pub const ALL: [Version; 5] = [
        Version::Cm5,
        Version::Cm4,
        Version::Cm3,
        Version::Cm2,
        Version::Cm1,
    ];

    /// The name suffix without its dash (`cm5`).
    pub fn suffix(self) -> &'static str {
        match self {
            Version::Cm1 => "cm",
            Version::Cm2 => "cm2",
            Version::Cm3 => "cm3",
            Version::Cm4 => "cm4",
            Version::Cm5 => "cm5",
        }
    }

    /// What the version's fingerprint hashes (unchanged since each version was made).
    fn identity(self) -> String {
        match self {
            Version::Cm1 => identity(&PARAMS),
            Version::Cm2 => identity_bounded(&PARAMS, &BOUNDED),
            Version::Cm3 => identity_extended(),
            Version::Cm4 => identity_tuned(&TUNING),
            Version::Cm5 => identity_refined(&REFINE),
        }
    }

    fn bounded(self) -> Option<Bounded> {
        (self != Version::Cm1).then_some(BOUNDED)
    }

    fn extras(self) -> bool {
        matches!(self, Version::Cm3 | Version::Cm4 | Version::Cm5)
    }

    fn tuning(self) -> Option<Tuning> {
        matches!(self, Version::Cm4 | Version::Cm5).then_some(TUNING)
    }

    fn refine(self) -> Option<Refine> {
        (self == Version::Cm5).then_some(REFINE)
    }
}

impl BitMixed {
    /// Wraps a byte-level model (vocabulary of 256) in mixing `version`: `NAME-cm5` is
    /// `BitMixed::new(NAME, Version::Cm5)`.
    pub fn new(inner: Box<dyn LanguageModel>, version: Version) -> Result<BitMixed> {
        let mut m = BitMixed::wrap(
            inner,
            version.suffix(),
            version.identity(),
            version.bounded(),
            version.extras(),
            version.tuning(),
        )?;
        m.refine = version.refine();
        Ok(m)
    }

    fn wrap(
        inner: Box<dyn LanguageModel>,
        suffix: &str,
        params: String,
        bounded: Option<Bounded>,
        extras: bool,
        tuning: Option<Tuning>,
    ) -> Result<BitMixed> {
        let info = ModelInfo {
            default_segment_tokens: SEGMENT_TOKENS,
            ..byte_wrapper_info(inner.as_ref(), suffix, "llmzip-bit-mix", &params)?
        };
        Ok(BitMixed {
            inner,
            info,
            bounded,
            extras,
            tuning,
            refine: None,
            shared: Shared::new(0, None, false, None, None, Vec::new()),
            rows: Vec::new(),
        })
    }

    /// Learns from the symbols just fed, in row order. The first input of a row is BOS. (A row
    /// whose segment has ended re-feeds its last token; the decoder feeds the same tokens, so
    /// both sides learn identically.)
    fn learn(&mut self, inputs: &[u32]) {
        for (index, (row, &tok)) in self.rows.iter_mut().zip(inputs).enumerate() {
            if !row.started {
                row.started = true;
                continue;
            }
            if let Ok(byte) = u8::try_from(tok) {
                self.shared.learn(index, row, byte);
                row.push(byte, self.refine.as_ref().map_or(0, |r| r.line_bytes));
            }
        }
    }

    /// Mixes every row's prediction into `probs`, which holds the inner model's.
    fn predict(&mut self, probs: &mut [f32]) {
        let shared = &self.shared;
        self.rows
            .par_iter_mut()
            .zip(probs.par_chunks_mut(256))
            .for_each(|(row, out)| {
                let inner: [f32; 256] = out.try_into().expect("256 probabilities per row");
                shared.predict(row, &inner, out);
            });
    }
}

impl LanguageModel for BitMixed {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &dyn Tokenizer {
        self.inner.tokenizer()
    }

    fn working_memory(&self, shape: &BatchShape) -> u64 {
        let texts = shape.block_len.saturating_mul(2);
        let tables = match &self.bounded {
            // The rows' texts (grown by doubling, or rings of a fixed size) and the fixed tables.
            Some(b) => {
                let contexts = match (self.extras, &self.refine) {
                    (false, _) => BASE_CONTEXTS,
                    (true, None) => COLUMNS_AT,
                    (true, Some(_)) => CONTEXTS,
                };
                let texts = match &self.tuning {
                    Some(t) => texts.min(t.match_history.max(4096 * shape.rows)),
                    None => texts,
                };
                texts.saturating_add(b.table_bytes(contexts))
            }
            None => shape.block_len.saturating_mul(BYTES_PER_BYTE),
        };
        let own = shape.rows.saturating_mul(ROW_BYTES).saturating_add(tables);
        own.saturating_add(self.inner.working_memory(shape))
    }

    fn start_block(&mut self, rows: usize) -> Result<()> {
        // The old tables are cleared and reused, or go first: two sets never coexist.
        let recycled = {
            let old = std::mem::replace(
                &mut self.shared,
                Shared::new(0, None, false, None, None, Vec::new()),
            );
            old.tables
        };
        self.shared = Shared::new(
            rows,
            self.bounded.as_ref(),
            self.extras,
            self.tuning.as_ref(),
            self.refine.as_ref(),
            recycled,
        );
        self.rows = vec![RowState::new(); rows];
        self.inner.start_block(rows)
    }

    /// `gru-cm` forgets its statistics at a slide too, as it always has: its archives made with
    /// `--window` (tests/golden/gru-cm-window.txt) depend on it. `gru-cm2` keeps them, and each
    /// row's byte history (the bytes are the same after a slide): only the inner model slides.
    fn slide(&mut self, rows: usize) -> Result<()> {
        if self.bounded.is_some() {
            self.inner.slide(rows)
        } else {
            self.start_block(rows)
        }
    }

    /// `gru-cm` steps through the re-fed tokens, learning from them again (the archives made
    /// with it depend on that). `gru-cm2` has already learned them: the inner model prefills,
    /// and only the last token of each row (the one just coded) is learned.
    fn prefill(&mut self, tokens: &[u32], len: usize) -> Result<Vec<f32>> {
        let rows = tokens.len() / len.max(1);
        if self.bounded.is_none() || len == 0 {
            let mut probs = Vec::new();
            for t in 0..len {
                let column: Vec<u32> = (0..rows).map(|r| tokens[r * len + t]).collect();
                probs = self.step(&column)?;
            }
            return Ok(probs);
        }
        let last = last_of_rows(tokens, self.rows.len(), len)?;
        self.learn(&last);
        let mut probs = self.inner.prefill(tokens, len)?;
        self.predict(&mut probs);
        Ok(probs)
    }

    fn step(&mut self, inputs: &[u32]) -> Result<Vec<f32>> {
        check_step(inputs, self.rows.len())?;
        self.learn(inputs);
        let mut probs = self.inner.step(inputs)?;
        self.predict(&mut probs);
        Ok(probs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Schedule;
    use crate::models::testing::{round_trip, Uniform, Wide};
    use crate::models::Fingerprint;

    /// Text with local repetition, a long repeat and some noise, as several uneven segments.
    fn sample() -> Vec<u8> {
        let mut data = Vec::new();
        let mut x = 12345u32;
        for i in 0..400 {
            data.extend_from_slice(b"the rain in spain stays mainly in the plain; ");
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            data.extend_from_slice(format!("{} ", x >> 20).as_bytes());
            if i % 50 == 7 {
                data.extend_from_slice(&[0, 0xFF, 0x80, b'\r', b'\n']);
            }
        }
        data
    }

    fn schedule() -> Schedule {
        Schedule {
            block_size: 9_000,
            max_segments: 5,
            min_segment_tokens: 500,
            window: 0,
        }
    }

    fn compress_with(model: &mut BitMixed, data: &[u8]) -> (Vec<u8>, f64) {
        compress_scheduled(model, data, &schedule())
    }

    /// Round trip through a fresh decoder of the same kind; ideal bits per byte.
    fn compress_scheduled(model: &mut BitMixed, data: &[u8], s: &Schedule) -> (Vec<u8>, f64) {
        let mut decoder = match (&model.bounded, model.extras, &model.tuning, &model.refine) {
            (None, ..) => BitMixed::new(Uniform::boxed(), Version::Cm1).unwrap(),
            (Some(_), false, ..) => BitMixed::new(Uniform::boxed(), Version::Cm2).unwrap(),
            (Some(_), true, None, _) => BitMixed::new(Uniform::boxed(), Version::Cm3).unwrap(),
            (Some(_), true, Some(_), None) => {
                BitMixed::new(Uniform::boxed(), Version::Cm4).unwrap()
            }
            (Some(_), true, Some(_), Some(_)) => {
                BitMixed::new(Uniform::boxed(), Version::Cm5).unwrap()
            }
        };
        let (archive, summary) = round_trip(model, &mut decoder, data, s);
        (archive, summary.ideal_bits / data.len().max(1) as f64)
    }

    /// `gru-cm2` learns like `gru-cm`, from the same code, within fixed tables, and it is another
    /// model, by fingerprint.
    #[test]
    fn bounded_tables_learn_and_are_another_model() {
        let data = sample();
        let (_, cm) = compress_with(
            &mut BitMixed::new(Uniform::boxed(), Version::Cm1).unwrap(),
            &data,
        );
        let fresh = || BitMixed::new(Uniform::boxed(), Version::Cm2).unwrap();
        let (_, cm2) = compress_with(&mut fresh(), &data);
        assert!(cm2 < 2.0 && (cm2 - cm).abs() < 0.05, "cm {cm}, cm2 {cm2}");
        let (a, b) = (
            fresh(),
            BitMixed::new(Uniform::boxed(), Version::Cm1).unwrap(),
        );
        assert_ne!(a.info().fingerprint, b.info().fingerprint);
        assert_eq!(a.info().name, "uniform-cm2");
        let other = Bounded {
            table_bits: BOUNDED.table_bits + 1,
            ..BOUNDED
        };
        assert_ne!(
            identity_bounded(&PARAMS, &other),
            identity_bounded(&PARAMS, &BOUNDED)
        );
    }

    /// `gru-cm3` (word triples on top of `gru-cm2`) round-trips, learns, and is a model of its
    /// own.
    #[test]
    fn extra_word_contexts_learn_and_are_another_model() {
        let data = sample();
        let fresh = || BitMixed::new(Uniform::boxed(), Version::Cm3).unwrap();
        let (_, cm3) = compress_with(&mut fresh(), &data);
        let (_, cm2) = compress_with(
            &mut BitMixed::new(Uniform::boxed(), Version::Cm2).unwrap(),
            &data,
        );
        assert!(cm3 < 2.0 && (cm3 - cm2).abs() < 0.1, "cm2 {cm2}, cm3 {cm3}");
        let names = [
            fresh(),
            BitMixed::new(Uniform::boxed(), Version::Cm2).unwrap(),
        ];
        assert_ne!(names[0].info().fingerprint, names[1].info().fingerprint);
        assert_eq!(names[0].info().name, "uniform-cm3");
    }

    /// `gru-cm4` (learning rates, fourth mixer, confidence inputs on top of `gru-cm3`)
    /// round-trips, learns at least as well as `gru-cm3` on repetitive text, and is a model of
    /// its own; every tuning value enters its identity.
    #[test]
    fn tuned_learning_round_trips_and_is_another_model() {
        let data = sample();
        let fresh = || BitMixed::new(Uniform::boxed(), Version::Cm4).unwrap();
        let (_, cm4) = compress_with(&mut fresh(), &data);
        let (_, cm3) = compress_with(
            &mut BitMixed::new(Uniform::boxed(), Version::Cm3).unwrap(),
            &data,
        );
        assert!(cm4 < cm3 * 1.02, "cm3 {cm3}, cm4 {cm4}");
        let m = fresh();
        assert_eq!(m.info().name, "uniform-cm4");
        let cm3_model = BitMixed::new(Uniform::boxed(), Version::Cm3).unwrap();
        assert_ne!(m.info().fingerprint, cm3_model.info().fingerprint);
        let edits: [fn(&mut Tuning); 5] = [
            |t| t.rate_floor += 1,
            |t| t.rate_boost += 1,
            |t| t.rate_halfway += 1,
            |t| t.confidence_scale += 1,
            |t| t.match_history /= 2,
        ];
        for edit in edits {
            let mut t = TUNING;
            edit(&mut t);
            assert_ne!(identity_tuned(&t), identity_tuned(&TUNING), "{t:?}");
        }
        // A new set learns fast and settles; the settled rate is below gru-cm's fixed one.
        assert_eq!(TUNING.rate(0), TUNING.rate_floor + TUNING.rate_boost as i32);
        assert!(TUNING.rate(100) > TUNING.rate(10_000));
        assert!(TUNING.rate(u32::MAX) <= TUNING.rate_floor + 1);
        const { assert!(TUNING.rate_floor < mixer::UNIT_RATE) };
    }

    /// Lines of fixed-width fields, as in a table or aligned code: where the breaks and the
    /// padding fall depends on the position in the line.
    fn table() -> Vec<u8> {
        let mut data = Vec::new();
        let mut x = 99u32;
        for _ in 0..600 {
            let mut line = String::new();
            for width in [9, 5, 12, 7] {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let field = format!("{}", x >> (14 + x % 9));
                line.push_str(&format!("{field:>width$} |"));
            }
            data.extend_from_slice(line.as_bytes());
            data.push(b'\n');
        }
        data
    }

    /// `gru-cm5` (second-layer mixer and column contexts on top of `gru-cm4`) round-trips,
    /// learns the layout of lines that `gru-cm4` cannot see, and is a model of its own.
    #[test]
    fn refined_mixing_round_trips_learns_columns_and_is_another_model() {
        let fresh = || BitMixed::new(Uniform::boxed(), Version::Cm5).unwrap();
        let cm4 = || BitMixed::new(Uniform::boxed(), Version::Cm4).unwrap();
        let (_, on_text) = compress_with(&mut fresh(), &sample());
        let (_, cm4_text) = compress_with(&mut cm4(), &sample());
        assert!(on_text < cm4_text * 1.02, "cm4 {cm4_text}, cm5 {on_text}");
        let (_, on_table) = compress_with(&mut fresh(), &table());
        let (_, cm4_table) = compress_with(&mut cm4(), &table());
        assert!(
            on_table < cm4_table * 0.97,
            "cm4 {cm4_table}, cm5 {on_table}"
        );
        // With window slides (rows keep their line and the one above across a slide, on both
        // sides) the archive decodes and does not depend on the thread count.
        let windowed = Schedule {
            window: 64,
            ..schedule()
        };
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let (one, _) = pool(1).install(|| compress_scheduled(&mut fresh(), &table(), &windowed));
        let (three, _) = pool(3).install(|| compress_scheduled(&mut fresh(), &table(), &windowed));
        assert_eq!(one, three);
        let m = fresh();
        assert_eq!(m.info().name, "uniform-cm5");
        assert_ne!(m.info().fingerprint, cm4().info().fingerprint);
        let edits: [fn(&mut Refine); 2] = [|r| r.final_shift += 1, |r| r.line_bytes /= 2];
        for edit in edits {
            let mut r = REFINE;
            edit(&mut r);
            assert_ne!(identity_refined(&r), identity_refined(&REFINE), "{r:?}");
        }
    }

    /// With a context window, `gru-cm` starts over at every slide while `gru-cm2` keeps what it
    /// learned; both decode exactly (the decoder slides and prefills at the same steps).
    #[test]
    fn bounded_statistics_survive_window_slides() {
        let data = sample();
        let windowed = Schedule {
            window: 64,
            ..schedule()
        };
        let (_, cm) = compress_scheduled(
            &mut BitMixed::new(Uniform::boxed(), Version::Cm1).unwrap(),
            &data,
            &windowed,
        );
        let (_, cm2) = compress_scheduled(
            &mut BitMixed::new(Uniform::boxed(), Version::Cm2).unwrap(),
            &data,
            &windowed,
        );
        let (_, unwindowed) = compress_with(
            &mut BitMixed::new(Uniform::boxed(), Version::Cm2).unwrap(),
            &data,
        );
        assert!(cm2 < cm * 0.75, "cm {cm}, cm2 {cm2}");
        // The inner model is uniform, so the slides cost the mix almost nothing.
        assert!((cm2 - unwindowed).abs() < 0.05, "{cm2} vs {unwindowed}");
    }

    #[test]
    fn learns_and_round_trips_any_bytes() {
        let data = sample();
        let mut model = BitMixed::new(Uniform::boxed(), Version::Cm1).unwrap();
        let (_, bits_per_byte) = compress_with(&mut model, &data);
        // Uniform alone costs 8 bits per byte; counts, match model and mixing take most of it.
        assert!(bits_per_byte < 2.0, "{bits_per_byte}");
    }

    #[test]
    fn archives_depend_on_neither_threads_nor_earlier_work() {
        let data = sample();
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        for version in Version::ALL {
            let fresh = || BitMixed::new(Uniform::boxed(), version).unwrap();
            let (one, _) = pool(1).install(|| compress_with(&mut fresh(), &data));
            // Three threads, and a model object that has coded other data before.
            let (three, _) = pool(3).install(|| {
                let mut model = fresh();
                compress_with(&mut model, &data[..5000]);
                compress_with(&mut model, &data)
            });
            assert_eq!(one, three, "{}", fresh().info().name);
        }
    }

    #[test]
    fn every_parameter_enters_the_fingerprint() {
        let base = identity(&PARAMS);
        let changed = [
            Params {
                mix_shift: PARAMS.mix_shift + 1,
                ..PARAMS
            },
            Params {
                orders: [1, 2, 3, 4, 5, 6, 7],
                ..PARAMS
            },
            Params {
                match_initial: (58983, 6554),
                ..PARAMS
            },
            Params {
                segment_tokens: 8 << 10,
                ..PARAMS
            },
            Params {
                min_mass: 1.0 / 8192.0,
                ..PARAMS
            },
        ];
        for params in &changed {
            assert_ne!(identity(params), base, "{params:?}");
        }
        let fp = |s: &str| {
            byte_wrapper_info(Uniform::boxed().as_ref(), "cm", "llmzip-bit-mix", s)
                .unwrap()
                .fingerprint
        };
        assert_ne!(fp(&identity(&changed[0])), fp(&base));
    }

    #[test]
    fn identity_differs_from_the_inner_model_and_needs_bytes() {
        let m = BitMixed::new(Uniform::boxed(), Version::Cm1).unwrap();
        assert_eq!(m.info().name, "uniform-cm");
        assert_ne!(m.info().fingerprint, Fingerprint([3; 16]));
        assert_eq!(m.info().default_segment_tokens, SEGMENT_TOKENS);
        assert!(BitMixed::new(Wide::boxed(), Version::Cm1).is_err());
    }
}
