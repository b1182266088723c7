//! Adaptive multi-symbol rANS: symbols from small alphabets under many contexts, each context a
//! frequency table that both sides rebuild from the counts at the same moments. For fields as
//! stationary as those of a weight tensor this codes as tightly as bit-wise adaptive models, and
//! it is several times faster: one table lookup and a multiply per decoded symbol, no per-bit
//! work, and no tables to send (a chunk's static tables cost about 0.2 % of SmolLM2's q4_1
//! tensors when they were sent instead). 14 bits of resolution rather than 12 made SmolLM2's
//! GGUF 0.08 % smaller, mostly in the 256-symbol q8_0 tables.
//!
//! * A table starts uniform and is rebuilt after its 8th, 16th, 32nd … symbol, then after every
//!   [`PERIOD`] more, from the weights `16·count + 1` (every symbol stays possible; a larger
//!   pseudo-count made the GRU's bf16 weights 0.9 % bigger), normalised to
//!   [`PROB_BITS`] bits with every symbol kept at ≥ 1 (integer arithmetic only, so both sides
//!   build the same tables).
//! * The coder is ryg's 32-bit rANS with 16-bit renormalisation: state in `[2^16, 2^32)`. rANS
//!   codes backwards, so the [`Encoder`] first runs forwards, recording each symbol's interval
//!   under the table of the moment, and then writes them in reverse, a segment at a time; the
//!   decoder runs forwards with [`Decoder`].
//! * [`Lanes`]: one state, or four that take turns symbol by symbol in one stream (ryg's
//!   interleaving). A decoded symbol's state update waits on a table lookup, a load of its
//!   interval and a multiply; with one state every symbol waits for the one before, with four
//!   the processor works on four at once. The symbols, their tables and their cost are the
//!   same; only the order of the stream's words differs (and 16 bytes of final states per
//!   segment of [`SEGMENT`] symbols, where one state took 4 per chunk).
//!   Measured on SmolLM2's Q4_1 GGUF: docs/profile.md, "The weight-file codec".
//! * The encoder divides by a symbol's frequency through a multiply by its reciprocal
//!   ([`RECIPROCALS`]), exact for every state: the same stream as a division, without its
//!   latency.

use super::Padded;

/// Bits of probability resolution per table.
pub const PROB_BITS: u32 = 14;
const TOTAL: u32 = 1 << PROB_BITS;
const LOW: u32 = 1 << 16;
/// Symbols between rebuilds of a table once it has seen this many.
pub const PERIOD: u32 = 1 << 16;

/// A family of tables: table `t` has `alphabet(t)` symbols, a power of two ≤ 256.
#[derive(Debug, Clone)]
pub struct Space {
    offsets: Vec<u32>,
}

impl Space {
    /// Tables of the given alphabet sizes, in order.
    pub fn new(alphabets: impl IntoIterator<Item = u32>) -> Space {
        let mut offsets = vec![0];
        for a in alphabets {
            assert!(a.is_power_of_two() && a <= 256, "alphabet of {a}");
            offsets.push(offsets.last().unwrap() + a);
        }
        Space { offsets }
    }

    fn tables(&self) -> usize {
        self.offsets.len() - 1
    }

    #[inline]
    fn range(&self, t: usize) -> std::ops::Range<usize> {
        self.offsets[t] as usize..self.offsets[t + 1] as usize
    }

    fn slots(&self) -> usize {
        *self.offsets.last().unwrap() as usize
    }
}

/// The adaptive tables of one chunk, the same on both sides.
#[derive(Debug)]
pub struct Models {
    space: Space,
    counts: Vec<u32>,
    /// Per slot: `start << 16 | freq` under the table of the moment.
    interval: Vec<u32>,
    tables: Vec<Table>,
}

/// One table's bookkeeping, kept together so a symbol touches one cache line of it.
#[derive(Debug, Clone)]
struct Table {
    base: u32,
    seen: u32,
    next: u32,
    /// Symbols in the table.
    alphabet: u32,
    /// Which symbol each of the 2^PROB_BITS slots belongs to (decoder only, built on first use
    /// by a table of more than [`SEARCHED`] symbols).
    lookup: Option<Box<[u8]>>,
}

impl Models {
    /// Uniform tables over `space`.
    pub fn new(space: Space) -> Models {
        let mut interval = vec![0u32; space.slots()];
        let mut tables = Vec::with_capacity(space.tables());
        for t in 0..space.tables() {
            let r = space.range(t);
            let f = TOTAL / r.len() as u32;
            for (k, i) in r.clone().enumerate() {
                interval[i] = ((k as u32 * f) << 16) | f;
            }
            tables.push(Table {
                base: r.start as u32,
                seen: 0,
                next: 8,
                alphabet: r.len() as u32,
                lookup: None,
            });
        }
        Models {
            counts: vec![0; space.slots()],
            interval,
            tables,
            space,
        }
    }

    /// Counts slot `i` of table `t` and rebuilds the table when it is due.
    #[inline(always)]
    fn update(&mut self, t: usize, i: usize) {
        // A chunk holds far fewer than 2^32 symbols: these never wrap (no overflow checks in
        // the hot loop).
        self.counts[i] = self.counts[i].wrapping_add(1);
        let table = &mut self.tables[t];
        table.seen = table.seen.wrapping_add(1);
        if table.seen == table.next {
            table.next = if table.next < PERIOD {
                2 * table.next
            } else {
                table.next + PERIOD
            };
            self.rebuild(t);
        }
    }

    #[cold]
    fn rebuild(&mut self, t: usize) {
        let r = self.space.range(t);
        let weights: Vec<u32> = self.counts[r.clone()].iter().map(|&c| 16 * c + 1).collect();
        let mut freq = vec![0u16; r.len()];
        normalise(&weights, &mut freq);
        let mut acc = 0u32;
        for (i, &f) in r.zip(&freq) {
            self.interval[i] = (acc << 16) | u32::from(f);
            acc += u32::from(f);
        }
        let range = self.space.range(t);
        if let Some(lookup) = &mut self.tables[t].lookup {
            fill(lookup, &self.interval[range]);
        }
    }

    /// The encoder's step: symbol `s` of table `t`, its interval recorded in `out`.
    #[inline(always)]
    fn encode(&mut self, t: usize, s: u32, out: &mut Vec<u32>) {
        let i = self.tables[t].base as usize + s as usize;
        out.push(self.interval[i]);
        self.update(t, i);
    }

    /// [`Models::encode`] of each of `symbols` under table `t`, in order. Where the table is
    /// not due for a rebuild within them (nearly always) its intervals stay as they are, and
    /// the run is coded without a check per symbol.
    #[inline(always)]
    fn encode_run(&mut self, t: usize, symbols: &[u8], out: &mut Vec<u32>) {
        let table = &mut self.tables[t];
        let n = symbols.len() as u32;
        if table.next - table.seen <= n {
            for &s in symbols {
                self.encode(t, u32::from(s), out);
            }
            return;
        }
        table.seen += n;
        let base = table.base as usize;
        for &s in symbols {
            let i = base + usize::from(s);
            out.push(self.interval[i]);
            self.counts[i] = self.counts[i].wrapping_add(1);
        }
    }
}

/// Tables of up to this many symbols are searched, not looked up: a 16 KiB lookup table per
/// context adds up to more than a core's cache where hundreds of contexts are in use (a float
/// format's sign and top mantissa bits), while finding one of 4 symbols takes three
/// comparisons. (Searching tables of 16 and 32 symbols too was slower: docs/profile.md.)
const SEARCHED: u32 = 4;

/// The symbol whose interval holds `slot` in a table of `N` symbols (`intervals` from its
/// first): how many symbols after the first start at or below `slot` (starts increase, as every
/// frequency is ≥ 1).
#[inline(always)]
fn search<const N: usize>(intervals: &[u32], slot: u32) -> u32 {
    let intervals: &[u32; N] = intervals[..N].try_into().expect("a table of N symbols");
    // `start << 16 | freq < (slot + 1) << 16` exactly when `start ≤ slot`.
    let limit = (slot + 1) << 16;
    // A wrapping sum (it never wraps) compiles to plain adds; a checked one does not.
    intervals[1..]
        .iter()
        .fold(0u32, |n, &iv| n.wrapping_add(u32::from(iv < limit)))
}

fn fill(lookup: &mut [u8], intervals: &[u32]) {
    for (s, &iv) in intervals.iter().enumerate() {
        let (a, f) = ((iv >> 16) as usize, (iv & 0xffff) as usize);
        lookup[a..a + f].fill(s as u8);
    }
}

/// Scales `weights` (all ≥ 1) to frequencies summing to [`TOTAL`], each at least 1; the
/// rounding error goes to the largest.
fn normalise(weights: &[u32], freq: &mut [u16]) {
    let total: u64 = weights.iter().map(|&c| u64::from(c)).sum();
    let mut sum = 0i64;
    for (f, &c) in freq.iter_mut().zip(weights) {
        *f = ((u64::from(c) * u64::from(TOTAL) / total).max(1)) as u16;
        sum += i64::from(*f);
    }
    let mut diff = i64::from(TOTAL) - sum;
    while diff != 0 {
        let (i, _) = freq
            .iter()
            .enumerate()
            .max_by_key(|(i, &f)| (f, std::cmp::Reverse(*i)))
            .expect("a symbol");
        let step = if diff > 0 {
            diff
        } else {
            (-diff).min(i64::from(freq[i]) - 1)
        };
        if diff > 0 {
            freq[i] += step as u16;
        } else {
            freq[i] -= step as u16;
        }
        diff += if diff > 0 { -step } else { step };
    }
}

/// How a stream is laid out: a property of the stream, so both sides must agree (the tensor
/// archive's version says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lanes {
    /// One state over the whole stream (tensor archives of version 1).
    One,
    /// Four states, symbol `i` of a segment coded by state `i mod 4`, in segments of
    /// [`SEGMENT`] symbols (the last one may hold fewer; version 2).
    Four,
}

impl Lanes {
    fn count(self) -> usize {
        match self {
            Lanes::One => 1,
            Lanes::Four => 4,
        }
    }

    /// Symbols after which a segment ends.
    fn segment(self) -> usize {
        match self {
            Lanes::One => usize::MAX,
            Lanes::Four => SEGMENT,
        }
    }
}

/// A segment of a [`Lanes::Four`] stream ends once it holds this many symbols: the encoder
/// codes it (backwards) and starts afresh, so that what it records (4 bytes a symbol, and 2 of
/// words) stays at 6 MiB instead of growing with the chunk. Each segment costs its 16 bytes of
/// final states. Measured on SmolLM2's GGUF (docs/profile.md): 2^16 to 2^20 code equally fast
/// (compression 10-15 % faster than one segment per chunk); 2^20 costs 0.002 % of the archive
/// (2^16: 0.03 %).
pub const SEGMENT: usize = 1 << 20;

/// `ceil(2^47 / f)` for every frequency `f` in `1..=TOTAL` (index 0 unused): `x / f` is
/// `(x · RECIPROCALS[f]) >> 47` for every 32-bit `x`. With `m·f = 2^47 + e`, `0 ≤ e < f`, the
/// product overshoots `x / f` by `x·e / (f·2^47) < 2^-15`, while `x / f` sits at least `1/f ≥
/// 2^-14` below the next integer; so the floor is exact (the test checks the extremes).
static RECIPROCALS: [u64; TOTAL as usize + 1] = {
    let mut t = [0u64; TOTAL as usize + 1];
    let mut f = 1;
    while f <= TOTAL as usize {
        t[f] = (1u64 << 47).div_ceil(f as u64);
        f += 1;
    }
    t
};

/// `x / f` and `x % f` for `1 ≤ f ≤ TOTAL`, without a division.
#[inline(always)]
fn div_rem(x: u32, f: u32) -> (u32, u32) {
    let q = ((u128::from(x) * u128::from(RECIPROCALS[f as usize])) >> 47) as u32;
    // `q·f ≤ x`: no wrap.
    (q, x.wrapping_sub(q.wrapping_mul(f)))
}

/// The encoding side: records each symbol's interval under its table of the moment (the
/// models move forwards) and, a segment at a time, codes the recorded intervals backwards into
/// the stream. Its buffers are kept from one stream to the next ([`Encoder::start`]).
#[derive(Debug, Default)]
pub struct Encoder {
    lanes: Option<Lanes>,
    recorded: Vec<u32>,
    words: Vec<u16>,
    stream: Vec<u8>,
}

impl Encoder {
    /// Starts a new stream laid out as `lanes` says, of about `bytes` bytes (room is made for
    /// them at once, rather than copied from buffer to buffer as the stream grows).
    pub fn start(&mut self, lanes: Lanes, bytes: usize) {
        self.lanes = Some(lanes);
        self.recorded.clear();
        self.stream.clear();
        self.stream.reserve(bytes);
    }

    fn lanes(&self) -> Lanes {
        self.lanes.expect("Encoder::start before coding")
    }

    /// Codes symbol `s` of table `t` of `models`.
    #[inline(always)]
    pub fn encode(&mut self, models: &mut Models, t: usize, s: u32) {
        self.boundary();
        models.encode(t, s, &mut self.recorded);
    }

    /// Codes each of `symbols` as a symbol of table `t` of `models`, in order: the same
    /// stream as [`Encoder::encode`] one at a time (a run that reaches a segment's end is split
    /// there).
    #[inline(always)]
    pub fn encode_run(&mut self, models: &mut Models, t: usize, mut symbols: &[u8]) {
        loop {
            self.boundary();
            // At least 1 after `boundary`.
            let room = self.lanes().segment() - self.recorded.len();
            if symbols.len() <= room {
                models.encode_run(t, symbols, &mut self.recorded);
                return;
            }
            let (now, rest) = symbols.split_at(room);
            models.encode_run(t, now, &mut self.recorded);
            symbols = rest;
        }
    }

    #[inline(always)]
    fn boundary(&mut self) {
        if self.recorded.len() >= self.lanes().segment() {
            self.flush();
        }
    }

    /// Codes the recorded symbols (backwards) and appends them to the stream as a segment:
    /// its final states, then its words in decoding order.
    #[cold]
    fn flush(&mut self) {
        let lanes = self.lanes();
        let x = encode_words(&self.recorded, lanes, &mut self.words);
        for x in &x[..lanes.count()] {
            self.stream.extend_from_slice(&x.to_le_bytes());
        }
        for w in self.words.iter().rev() {
            self.stream.extend_from_slice(&w.to_le_bytes());
        }
        self.recorded.clear();
    }

    /// Ends the stream: its bytes, until the next [`Encoder::start`].
    pub fn finish(&mut self) -> &[u8] {
        self.flush();
        &self.stream
    }
}

/// Codes `recorded` (intervals in coding order) backwards into `words` (cleared first, in
/// coding order: the stream holds them reversed) and returns the final states.
fn encode_words(recorded: &[u32], lanes: Lanes, words: &mut Vec<u16>) -> [u32; 4] {
    // At most one word per symbol: every symbol writes a word at `n` and keeps it (moves `n`
    // on) only when its state is renormalised, with no branch to mispredict (that choice is
    // close to a coin toss).
    words.clear();
    words.resize(recorded.len(), 0);
    let mut n = 0;
    let mut x = [LOW; 4];
    let mask = lanes.count() - 1;
    for (i, &r) in recorded.iter().enumerate().rev() {
        let x = &mut x[i & mask];
        let (start, f) = (r >> 16, r & 0xffff);
        // 2^32 when one symbol holds all the probability: then nothing is ever shifted out.
        let max = (u64::from(LOW >> PROB_BITS) << 16) * u64::from(f);
        let due = u64::from(*x) >= max;
        words[n] = *x as u16;
        n += usize::from(due);
        let y = if due { *x >> 16 } else { *x };
        // Wrapping arithmetic, which never wraps here: `q·f + rem = y`, and `y < max` keeps
        // the new state below 2^32 (rANS's invariant). The overflow checks of the rest of the
        // crate would cost a third of this loop.
        let (q, rem) = div_rem(y, f);
        *x = (q << PROB_BITS).wrapping_add(rem).wrapping_add(start);
    }
    words.truncate(n);
    x
}

/// Decodes a stream of [`Encoder`], updating the models exactly as the encoder did.
pub struct Decoder<'a> {
    x: [u32; 4],
    lane: usize,
    /// `lanes.count() - 1`.
    mask: usize,
    lanes: Lanes,
    /// Symbols decoded in this segment.
    count: usize,
    input: Padded<'a>,
}

impl<'a> Decoder<'a> {
    /// Starts decoding `input`, coded with `lanes` (a short or damaged stream decodes into
    /// garbage, which the caller's checksum catches).
    pub fn new(input: &'a [u8], lanes: Lanes) -> Self {
        let mut d = Decoder {
            x: [0; 4],
            lane: 0,
            mask: lanes.count() - 1,
            lanes,
            count: 0,
            input: Padded::new(input),
        };
        d.next_segment();
        d
    }

    /// Reads a segment's states.
    #[cold]
    fn next_segment(&mut self) {
        for x in &mut self.x[..self.lanes.count()] {
            *x = 0;
            for k in 0..4 {
                *x |= u32::from(self.input.next_byte()) << (8 * k);
            }
        }
        self.lane = 0;
        self.count = 0;
    }

    /// Moves to the next segment where the encoder did (after exactly [`SEGMENT`] symbols),
    /// and says how many more symbols this segment holds (at least 1).
    #[inline(always)]
    fn boundary(&mut self) -> usize {
        if self.count >= self.lanes.segment() {
            self.next_segment();
        }
        self.lanes.segment() - self.count
    }

    /// Decodes a symbol of table `t` of `models`.
    #[inline(always)]
    pub fn decode(&mut self, models: &mut Models, t: usize) -> u32 {
        self.boundary();
        self.count += 1;
        self.step(models, t)
    }

    /// [`Decoder::decode`] within a segment.
    #[inline(always)]
    fn step(&mut self, models: &mut Models, t: usize) -> u32 {
        let table = &mut models.tables[t];
        let base = table.base as usize;
        let lane = self.lane;
        self.lane = (lane + 1) & self.mask;
        let x = self.x[lane];
        let slot = x & (TOTAL - 1);
        let s = match table.alphabet {
            2 => search::<2>(&models.interval[base..], slot),
            SEARCHED => search::<{ SEARCHED as usize }>(&models.interval[base..], slot),
            _ => {
                let lookup = match &mut table.lookup {
                    Some(l) => l,
                    slot => {
                        let mut l = vec![0u8; TOTAL as usize].into_boxed_slice();
                        fill(&mut l, &models.interval[models.space.range(t)]);
                        slot.insert(l)
                    }
                };
                u32::from(lookup[slot as usize])
            }
        };
        let i = base + s as usize;
        let iv = models.interval[i];
        let (start, f) = (iv >> 16, iv & 0xffff);
        // Never wraps (`f ≤ 2^14`, `x >> 14 < 2^18`, and the lookup or search puts `slot` in
        // `start..start + f`); wrapping arithmetic only skips the overflow checks in this hot
        // loop.
        let x = f
            .wrapping_mul(x >> PROB_BITS)
            .wrapping_add(slot)
            .wrapping_sub(start);
        // Renormalised without a branch: whether it is due is close to a coin toss.
        let due = x < LOW;
        let word = self.input.peek_u16();
        self.x[lane] = if due { (x << 16) | word } else { x };
        self.input.skip(2 * usize::from(due));
        models.update(t, i);
        s
    }

    /// [`Decoder::decode`] of `out.len()` symbols of table `t`, into `out`, in order (split
    /// where a segment ends, as the encoder split it). With four lanes, a run of whole rounds
    /// in which the table is not due for a rebuild keeps the four states in registers, one per
    /// lane, and checks nothing per symbol: the same symbols, the same stream position and the
    /// same tables after it as one symbol at a time.
    #[inline(always)]
    pub fn decode_run(&mut self, models: &mut Models, t: usize, mut out: &mut [u8]) {
        loop {
            let room = self.boundary();
            if out.len() <= room {
                self.count += out.len();
                self.run_within_segment(models, t, out);
                return;
            }
            let (now, rest) = std::mem::take(&mut out).split_at_mut(room);
            self.count += room;
            self.run_within_segment(models, t, now);
            out = rest;
        }
    }

    #[inline(always)]
    fn run_within_segment(&mut self, models: &mut Models, t: usize, out: &mut [u8]) {
        let n = out.len();
        let table = &models.tables[t];
        let fast = self.lanes == Lanes::Four && n.is_multiple_of(4);
        if !fast || (table.next - table.seen) as usize <= n {
            for o in out {
                *o = self.step(models, t) as u8;
            }
            return;
        }
        let Models {
            space,
            counts,
            interval,
            tables,
        } = models;
        let table = &mut tables[t];
        table.seen += n as u32;
        let range = space.range(t);
        let lookup = table.lookup.get_or_insert_with(|| {
            let mut l = vec![0u8; TOTAL as usize].into_boxed_slice();
            fill(&mut l, &interval[range.clone()]);
            l
        });
        let (interval, counts) = (&interval[range.clone()], &mut counts[range]);
        let lane = self.lane;
        let mut x: [u32; 4] = std::array::from_fn(|k| self.x[(lane + k) & 3]);
        for round in out.chunks_exact_mut(4) {
            for (x, o) in x.iter_mut().zip(round) {
                let slot = *x & (TOTAL - 1);
                let s = lookup[slot as usize];
                let iv = interval[usize::from(s)];
                let (start, f) = (iv >> 16, iv & 0xffff);
                // As in `decode`: never wraps.
                let y = f
                    .wrapping_mul(*x >> PROB_BITS)
                    .wrapping_add(slot)
                    .wrapping_sub(start);
                let due = y < LOW;
                let word = self.input.peek_u16();
                *x = if due { (y << 16) | word } else { y };
                self.input.skip(2 * usize::from(due));
                counts[usize::from(s)] = counts[usize::from(s)].wrapping_add(1);
                *o = s;
            }
        }
        for (k, x) in x.into_iter().enumerate() {
            self.x[(lane + k) & 3] = x;
        }
    }

    /// Bytes read past the end of the stream.
    pub fn overrun(&self) -> usize {
        self.input.overrun()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::rng::SplitMix64;

    #[test]
    fn skewed_symbols_under_contexts_round_trip_near_their_entropy() {
        let space = Space::new([16, 256, 4, 16]);
        let mut rng = SplitMix64::new(1);
        let mut symbols = Vec::new();
        let mut counts = vec![vec![0u32; 256]; 3];
        for i in 0..300_000 {
            let t = i % 3; // table 3 stays unused
            let r = rng.next_u64();
            let s = match t {
                0 => (r % 16).min(r % 5) as u32,
                1 => (r % 256) as u32 | 0x80,
                _ => (r % 4) as u32,
            };
            counts[t][s as usize] += 1;
            symbols.push((t, s));
        }
        let ideal: f64 = counts
            .iter()
            .map(|c| {
                let n: f64 = c.iter().map(|&x| x as f64).sum();
                c.iter()
                    .filter(|&&x| x > 0)
                    .map(|&x| -(x as f64) * (x as f64 / n).log2())
                    .sum::<f64>()
            })
            .sum();
        let mut sizes = Vec::new();
        for lanes in [Lanes::One, Lanes::Four] {
            let mut models = Models::new(space.clone());
            let mut e = Encoder::default();
            e.start(lanes, 0);
            for &(t, s) in &symbols {
                e.encode(&mut models, t, s);
            }
            let out = e.finish().to_vec();
            let mut models = Models::new(space.clone());
            let mut d = Decoder::new(&out, lanes);
            for &(t, s) in &symbols {
                assert_eq!(d.decode(&mut models, t), s, "{lanes:?}");
            }
            assert_eq!(d.overrun(), 0, "{lanes:?}");
            // Within 1 %: table 1 uses 128 of its 256 symbols, and each unused one keeps 1/2^14.
            let bits = 8.0 * out.len() as f64;
            assert!(bits < ideal * 1.01, "{lanes:?}: {bits} vs {ideal}");
            sizes.push(out.len());
        }
        // The same symbols at the same cost: four lanes add 12 bytes of states and at most a
        // word per lane (300,000 symbols: one segment).
        assert!(sizes[1].abs_diff(sizes[0]) <= 16 + 8, "{sizes:?}");
    }

    /// Symbols coded with one number of lanes are not read back with another: a stream says
    /// nothing of its lanes, its container must.
    #[test]
    fn lanes_are_part_of_the_stream() {
        let space = Space::new([16]);
        let mut models = Models::new(space.clone());
        let symbols: Vec<u32> = (0..4000u32).map(|i| (i * 7 + i / 13) % 16).collect();
        let mut e = Encoder::default();
        e.start(Lanes::Four, 0);
        for &s in &symbols {
            e.encode(&mut models, 0, s);
        }
        let out = e.finish().to_vec();
        let mut models = Models::new(space);
        let mut d = Decoder::new(&out, Lanes::One);
        let back: Vec<u32> = symbols.iter().map(|_| d.decode(&mut models, 0)).collect();
        assert_ne!(back, symbols);
    }

    /// Runs and single symbols, mixed, across segment ends (inside runs too), table rebuilds
    /// and runs that do not fill whole rounds of lanes: the decoder reads back what the encoder
    /// wrote, whether it reads runs as runs or one symbol at a time.
    #[test]
    fn runs_decode_like_single_symbols() {
        let space = Space::new([16, 256, 2]);
        let mut rng = SplitMix64::new(5);
        // (table, symbols): a run, or a single symbol when it holds one.
        let mut calls: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut total = 0;
        while total < 3 * SEGMENT + 1000 {
            let r = rng.next_u64();
            let (t, len) = match r % 4 {
                0 => (0, 32),
                1 => (1, 32),
                2 => (2, 1),
                _ => (0, 1 + (r >> 8) as usize % 7),
            };
            let alphabet = [16, 256, 2][t];
            let run = (0..len)
                .map(|k| ((r >> (12 + k % 40)) % alphabet).min((r >> 20) % alphabet) as u8)
                .collect();
            calls.push((t, run));
            total += len;
        }
        for lanes in [Lanes::One, Lanes::Four] {
            let mut models = Models::new(space.clone());
            let mut e = Encoder::default();
            e.start(lanes, 0);
            for (t, run) in &calls {
                match run.len() {
                    1 => e.encode(&mut models, *t, u32::from(run[0])),
                    _ => e.encode_run(&mut models, *t, run),
                }
            }
            let out = e.finish().to_vec();
            // Read back as it was written, and one symbol at a time: segments end after the
            // same symbols however the calls group them.
            for one_at_a_time in [false, true] {
                let mut models = Models::new(space.clone());
                let mut d = Decoder::new(&out, lanes);
                for (t, run) in &calls {
                    let mut back = vec![0u8; run.len()];
                    match (run.len(), one_at_a_time) {
                        (1, _) | (_, true) => {
                            for b in &mut back {
                                *b = d.decode(&mut models, *t) as u8;
                            }
                        }
                        _ => d.decode_run(&mut models, *t, &mut back),
                    }
                    assert_eq!(&back, run, "{lanes:?} {one_at_a_time}");
                }
                assert_eq!(d.overrun(), 0, "{lanes:?}");
            }
        }
    }

    /// The reciprocal division is exact where it is closest to failing: the largest states,
    /// states just below and at multiples of `f`, for every frequency.
    #[test]
    fn reciprocal_division_is_exact() {
        for f in 1..=TOTAL {
            let top = u32::MAX - u32::MAX % f;
            for x in [
                0,
                1,
                f - 1,
                f,
                f + 1,
                u32::MAX,
                u32::MAX - 1,
                top,
                top - 1,
                top - f,
            ] {
                assert_eq!(div_rem(x, f), (x / f, x % f), "{x} / {f}");
            }
        }
        let mut rng = SplitMix64::new(2);
        for _ in 0..1_000_000 {
            let r = rng.next_u64();
            let (x, f) = (r as u32, (r >> 32) as u32 % TOTAL + 1);
            assert_eq!(div_rem(x, f), (x / f, x % f), "{x} / {f}");
        }
    }

    #[test]
    fn normalised_tables_sum_exactly_and_keep_every_symbol() {
        for weights in [
            vec![1u32, 1, 1, 2_000_001],
            vec![11; 256],
            vec![1, 1, 15, 1],
            vec![3; 16],
        ] {
            let mut f = vec![0u16; weights.len()];
            normalise(&weights, &mut f);
            assert_eq!(f.iter().map(|&x| x as u32).sum::<u32>(), TOTAL);
            assert!(f.iter().all(|&x| x > 0));
        }
    }
}
