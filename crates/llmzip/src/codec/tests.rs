//! Codec tests with a small adaptive test model: fast, deterministic, and history-dependent, so
//! any divergence between the encoder's and decoder's schedules shows up as a failed round trip.

use super::*;
use crate::models::{Backend, Fingerprint, ModelInfo};
use crate::observer::Silent;
use crate::tokenization::{ByteTokenizer, Tokenizer};

/// Predicts the next byte from per-row bigram counts of what it has been fed.
struct BigramModel {
    info: ModelInfo,
    counts: Vec<Vec<u32>>,
    last: Vec<u32>,
    steps: usize,
    blocks: usize,
    slides: usize,
}

impl BigramModel {
    fn new(seed: u8) -> Self {
        BigramModel {
            info: ModelInfo {
                name: "bigram".into(),
                fingerprint: Fingerprint([seed; 16]),
                vocab_size: 256,
                bos: 256,
                backend: Backend::of(&candle_core::Device::Cpu, "f32"),
                max_context: None,
                default_window: 0,
                default_segment_tokens: 300,
            },
            counts: Vec::new(),
            last: Vec::new(),
            steps: 0,
            blocks: 0,
            slides: 0,
        }
    }
}

/// What one row of [`BigramModel`] holds: a 257 × 256 table of u32 counts.
const BIGRAM_ROW_BYTES: u64 = 257 * 256 * 4;

impl LanguageModel for BigramModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn tokenizer(&self) -> &dyn Tokenizer {
        &ByteTokenizer
    }
    fn working_memory(&self, shape: &crate::models::BatchShape) -> u64 {
        shape.rows * BIGRAM_ROW_BYTES
    }
    fn start_block(&mut self, rows: usize) -> Result<()> {
        self.blocks += 1;
        self.counts = vec![vec![0; 257 * 256]; rows];
        self.last = vec![256; rows];
        Ok(())
    }
    /// Forgets the previous token but keeps the counts: online statistics survive a slide.
    fn slide(&mut self, rows: usize) -> Result<()> {
        self.slides += 1;
        self.last = vec![256; rows];
        Ok(())
    }
    fn step(&mut self, inputs: &[u32]) -> Result<Vec<f32>> {
        self.steps += 1;
        let mut out = Vec::with_capacity(inputs.len() * 256);
        for (row, &tok) in inputs.iter().enumerate() {
            let prev = self.last[row] as usize;
            if prev != 256 || tok != 256 {
                self.counts[row][prev * 256 + (tok as usize).min(255)] += 1;
            }
            self.last[row] = tok;
            let c = &self.counts[row][tok as usize * 256..][..256];
            let total: u32 = c.iter().sum();
            out.extend(c.iter().map(|&n| (n as f32 + 0.05) / (total as f32 + 12.8)));
        }
        Ok(out)
    }
}

fn small_schedule() -> Schedule {
    Schedule {
        block_size: 4096,
        max_segments: 5,
        min_segment_tokens: 300,
        window: 0,
    }
}

fn round_trip(data: &[u8], schedule: &Schedule) -> (Vec<u8>, Summary) {
    let (mut encoder, mut decoder) = (BigramModel::new(1), BigramModel::new(1));
    crate::models::testing::round_trip(&mut encoder, &mut decoder, data, schedule)
}

fn text(n: usize) -> Vec<u8> {
    let words = [
        "the ", "cat ", "sat ", "on ", "a ", "mat, ", "and ", "then\n",
    ];
    let mut out = Vec::new();
    let mut i = 0usize;
    while out.len() < n {
        out.extend_from_slice(words[(i * 7 + i / 3) % words.len()].as_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

/// Inputs every codec path must round-trip: empty, one byte, runs, text across a block
/// boundary, several blocks, random bytes (stored), and text with NUL, CR and 0xFF.
fn assorted_inputs() -> Vec<Vec<u8>> {
    let mut random = vec![0u8; 10_000];
    let mut x = 12345u32;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut mixed = text(9000);
    for (i, b) in mixed.iter_mut().enumerate() {
        match i % 97 {
            0 => *b = 0,
            1 => *b = b'\r',
            2 => *b = 0xff,
            _ => {}
        }
    }
    vec![
        Vec::new(),
        vec![b'a'],
        vec![0u8; 5000],
        text(4096),
        text(4097),
        text(20_000),
        random,
        mixed,
    ]
}

#[test]
fn round_trips_assorted_inputs() {
    let s = small_schedule();
    for data in assorted_inputs() {
        round_trip(&data, &s);
    }
}

#[test]
fn text_is_coded_and_costs_close_to_the_ideal() {
    let data = text(200_000);
    let s = Schedule {
        block_size: 1 << 20,
        ..small_schedule()
    };
    let (archive, summary) = round_trip(&data, &s);
    assert_eq!(summary.stored_blocks, 0);
    // The archive header names the platform (`x86_64+sse`, `x86_64+avx2+fma`, …), so its
    // length depends on the machine: measure it, as the archive of nothing, rather than assume
    // it (a fixed 100 bytes failed by 5 bits on an AVX2 machine). Beyond it, a block header of
    // a few bytes, and the payload within 0.1 % of the ideal.
    let (empty, _) = round_trip(&[], &s);
    let payload_bits = (archive.len() - empty.len()) as f64 * 8.0;
    assert!(
        payload_bits <= summary.ideal_bits * 1.001 + 32.0 * 8.0,
        "{payload_bits} bits vs ideal {}",
        summary.ideal_bits
    );
}

#[test]
fn incompressible_data_is_stored_with_tiny_overhead() {
    let mut data = vec![0u8; 50_000];
    let mut x = 99u64;
    for b in data.iter_mut() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *b = (x >> 56) as u8;
    }
    let (archive, summary) = round_trip(&data, &small_schedule());
    assert!(summary.stored_blocks > 0);
    // Full random blocks are stored without running the model; only the short tail is modelled.
    assert!(summary.tokens < 4096, "{} tokens modelled", summary.tokens);
    // The archive header (~100 bytes) and at most 10 bytes per block header.
    let blocks = data.len().div_ceil(4096);
    let overhead = archive.len() - data.len();
    assert!(overhead < 100 + 10 * blocks, "overhead {overhead}");
}

#[test]
fn segments_ending_at_different_steps_round_trip() {
    // 1001 tokens in 4 rows: lengths 250, 250, 250, 251, and blocks of unequal sizes.
    let s = Schedule {
        block_size: 1001,
        max_segments: 4,
        min_segment_tokens: 1,
        window: 0,
    };
    round_trip(&text(1001 * 3 + 17), &s);
}

/// With a window, the model slides and is re-fed the recent half whenever it is full; the
/// bigram model forgets its previous token at each slide and counts the re-fed tokens again, so
/// a decoder that slid at other steps (or fed other tokens) would decode garbage.
#[test]
fn context_window_slides_identically_on_both_sides() {
    let s = Schedule {
        block_size: 1001,
        max_segments: 4,
        min_segment_tokens: 1,
        window: 16,
    };
    let data = text(1001 * 2 + 17);
    let (_, plain) = round_trip(&data, &Schedule { window: 0, ..s });
    let (_, slid) = round_trip(&data, &s);
    assert_ne!(
        slid.ideal_bits, plain.ideal_bits,
        "the slides must change the predictions"
    );

    let mut model = BigramModel::new(1);
    let mut archive = Vec::new();
    compress(
        &mut &data[..],
        &mut archive,
        &mut model,
        &s,
        &Limits::default(),
        BinaryBlocks::Model,
        &mut Silent,
    )
    .unwrap();
    // Blocks of 1001, 1001 and 17 tokens, stepped 251, 251 and 5 times. Each block starts once;
    // a full window (16) slides to 8 tokens, refills in 8 steps and slides on the 9th: at steps
    // 16, 25, ..., 250, 27 slides per long block.
    assert_eq!((model.blocks, model.slides), (3, 27 + 27));
    // The counts of the last long block survived its 27 slides: a row learned from all of its
    // 250 steps (plus the re-fed tokens), not just from the last window.
    let mut model = BigramModel::new(1);
    compress(
        &mut &data[..1001],
        &mut Vec::new(),
        &mut model,
        &s,
        &Limits::default(),
        BinaryBlocks::Model,
        &mut Silent,
    )
    .unwrap();
    let learned: u32 = model.counts[0].iter().sum();
    assert!(learned > 250, "{learned} transitions counted");

    // The cost tallies count every token once, add up to the ideal code length, and see the
    // tokens after slides (with slides every 9 steps, all from the first slide on); the
    // first 16 positions are 16 per row of the long blocks and all 17 tokens of the last.
    let c = &slid.costs;
    assert_eq!(c.total().tokens, data.len() as u64);
    assert!((c.total().bits - slid.ideal_bits).abs() < 1e-6 * slid.ideal_bits);
    assert!(c.after_slide.tokens > 0 && c.after_slide.tokens < data.len() as u64);
    assert_eq!(plain.costs.after_slide.tokens, 0);
    assert_eq!(
        plain.costs.by_position[0].tokens,
        (3 * 4 * 16) as u64 - (4 * 16 - 17)
    );
}

#[test]
fn wrong_model_is_refused_before_decoding() {
    let data = text(5000);
    let mut archive = Vec::new();
    compress(
        &mut data.as_slice(),
        &mut archive,
        &mut BigramModel::new(1),
        &small_schedule(),
        &Limits::default(),
        BinaryBlocks::Model,
        &mut Silent,
    )
    .unwrap();
    let mut other = BigramModel::new(2);
    let d = Decompressor::new(archive.as_slice()).unwrap();
    let mut out = Vec::new();
    let err = d
        .run(&mut out, &mut other, &Limits::default(), &mut Silent)
        .unwrap_err();
    assert!(matches!(err, Error::ModelMismatch { .. }), "{err}");
    assert_eq!(
        other.steps, 0,
        "no decoding may happen with the wrong model"
    );
    assert!(out.is_empty());
}

/// A bigram model that claims to compute on `backend` (it still runs on the CPU: only the label
/// that goes into the header changes).
fn bigram_on(backend: Backend) -> BigramModel {
    let mut model = BigramModel::new(1);
    model.info.backend = backend;
    model
}

fn gpu(platform: &str) -> Backend {
    Backend {
        device: "cuda".into(),
        dtype: "f32".into(),
        platform: platform.into(),
    }
}

#[test]
fn gpu_archives_decode_only_on_the_same_gpu_and_cpu_ones_on_any_cpu_family() {
    let data = text(4000);
    let made = |backend: Backend| {
        let mut archive = Vec::new();
        compress(
            &mut data.as_slice(),
            &mut archive,
            &mut bigram_on(backend),
            &small_schedule(),
            &Limits::default(),
            BinaryBlocks::Model,
            &mut Silent,
        )
        .unwrap();
        archive
    };
    let decode = |archive: &[u8], backend: Backend| {
        let mut model = bigram_on(backend);
        let mut out = Vec::new();
        let result = Decompressor::new(archive).unwrap().run(
            &mut out,
            &mut model,
            &Limits::default(),
            &mut Silent,
        );
        (result.map(|_| out), model.steps)
    };
    let here = "x86_64+avx512 + GPU A sm_90 driver 13.0 cublas 12.8.4";
    let archive = made(gpu(here));
    assert_eq!(decode(&archive, gpu(here)).0.unwrap(), data);
    for other in [
        "x86_64+avx512 + GPU B sm_90 driver 13.0 cublas 12.8.4",
        "x86_64+avx512 + GPU A sm_90 driver 13.0 cublas 12.9.1",
    ] {
        let (result, steps) = decode(&archive, gpu(other));
        let err = result.unwrap_err();
        assert!(matches!(err, Error::BackendMismatch { .. }), "{err}");
        assert!(err.to_string().contains("same GPU model"), "{err}");
        assert_eq!(steps, 0, "refused before decoding");
    }
    let (result, steps) = decode(&archive, Backend::of(&candle_core::Device::Cpu, "f32"));
    assert!(result.unwrap_err().to_string().contains("--device"));
    assert_eq!(steps, 0);

    // A CPU archive made on another CPU is decoded: the platform is informational there.
    let mut elsewhere = Backend::of(&candle_core::Device::Cpu, "f32");
    elsewhere.platform = "some-other-cpu".into();
    let archive = made(elsewhere);
    let cpu = Backend::of(&candle_core::Device::Cpu, "f32");
    assert_eq!(decode(&archive, cpu).0.unwrap(), data);
}

#[test]
fn corruption_is_detected_everywhere_and_never_panics() {
    let data = text(3000);
    let mut archive = Vec::new();
    compress(
        &mut data.as_slice(),
        &mut archive,
        &mut BigramModel::new(1),
        &small_schedule(),
        &Limits::default(),
        BinaryBlocks::Model,
        &mut Silent,
    )
    .unwrap();
    for i in 0..archive.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = archive.clone();
            bad[i] ^= flip;
            let mut out = Vec::new();
            let result = Decompressor::new(bad.as_slice()).and_then(|d| {
                d.run(
                    &mut out,
                    &mut BigramModel::new(1),
                    &Limits::default(),
                    &mut Silent,
                )
            });
            // Header CRC, block-header checks, payload CRC, block CRC and trailer: every
            // flip is refused, and nothing unverified reaches the output.
            assert!(result.is_err(), "flip {flip:#x} at {i} accepted");
        }
    }
    for cut in 0..archive.len() {
        let mut out = Vec::new();
        let result = Decompressor::new(&archive[..cut]).and_then(|d| {
            d.run(
                &mut out,
                &mut BigramModel::new(1),
                &Limits::default(),
                &mut Silent,
            )
        });
        assert!(result.is_err(), "truncation at {cut} accepted");
    }
}

#[test]
fn inspect_reports_structure() {
    let data = text(10_000);
    let (archive, _) = round_trip(&data, &small_schedule());
    let info = inspect(archive.as_slice()).unwrap();
    assert_eq!(info.original_len, 10_000);
    assert_eq!(info.archive_len, archive.len() as u64);
    assert_eq!(info.coded_blocks + info.stored_blocks, 3);
}

#[test]
fn cancellation_stops_with_interrupted() {
    struct Cancel;
    impl Observer for Cancel {
        fn cancelled(&self) -> bool {
            true
        }
    }
    let data = text(5000);
    let err = compress(
        &mut data.as_slice(),
        &mut Vec::new(),
        &mut BigramModel::new(1),
        &small_schedule(),
        &Limits::default(),
        BinaryBlocks::Model,
        &mut Cancel,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Interrupted));
}

#[test]
fn encoder_uses_fewer_rows_to_stay_within_limits_and_decoder_refuses_more() {
    let data = text(4000);
    let s = small_schedule();
    // The block's own buffers are part of the claim: 4 bytes per token and 1 per byte, and 8
    // bytes per symbol of each row's quantized distribution (`coder::Quantized`).
    let buffers = 5 * data.len() as u64;
    let row = BIGRAM_ROW_BYTES + 8 * 256;
    let two_rows = Limits {
        memory: 2 * row + buffers,
    };
    // The archive within `limits` and the row count of its (only) block.
    let compressed = |limits: &Limits| {
        let mut archive = Vec::new();
        compress(
            &mut data.as_slice(),
            &mut archive,
            &mut BigramModel::new(1),
            &s,
            limits,
            BinaryBlocks::Model,
            &mut Silent,
        )
        .unwrap();
        let mut input = archive.as_slice();
        let header = Header::read(&mut input).unwrap();
        match BlockHeader::read(&mut input, &header.schedule).unwrap() {
            BlockHeader::Coded { segments, .. } => (archive, segments),
            other => panic!("{other:?}"),
        }
    };
    // 4000 tokens would take 5 rows of 300+; the limit allows 2.
    let (archive, segments) = compressed(&two_rows);
    assert_eq!(segments, 2);
    let mut back = Vec::new();
    Decompressor::new(archive.as_slice())
        .unwrap()
        .run(&mut back, &mut BigramModel::new(1), &two_rows, &mut Silent)
        .unwrap();
    assert_eq!(back, data);
    // A decoder allowing one row refuses before the model runs, and says how to allow it.
    let mut model = BigramModel::new(1);
    let one_row = Limits {
        memory: row + buffers,
    };
    let err = Decompressor::new(archive.as_slice())
        .unwrap()
        .run(&mut Vec::new(), &mut model, &one_row, &mut Silent)
        .unwrap_err();
    assert!(matches!(err, Error::MemoryLimit { .. }), "{err}");
    assert!(err.to_string().contains("--memory"), "{err}");
    assert_eq!(model.steps, 0);
    // Without room for the buffers, two rows' worth of model memory holds one row.
    let model_only = Limits { memory: 2 * row };
    assert_eq!(compressed(&model_only).1, 1);
    // An encoder that cannot fit even one row refuses.
    let err = compress(
        &mut data.as_slice(),
        &mut Vec::new(),
        &mut BigramModel::new(1),
        &s,
        &Limits { memory: 1000 },
        BinaryBlocks::Model,
        &mut Silent,
    )
    .unwrap_err();
    assert!(matches!(err, Error::MemoryLimit { .. }), "{err}");
}

/// An archive with valid checksums that claims a block of `len` bytes and `tokens` tokens with
/// the given payload: what a hostile writer can make.
fn crafted(schedule: Schedule, len: u64, tokens: u64, rows: u64, payload: &[u8]) -> Vec<u8> {
    let model = BigramModel::new(1);
    let header = Header {
        writer: format::WRITER.into(),
        model_name: "bigram".into(),
        fingerprint: model.info.fingerprint,
        tokenizer: "bytes".into(),
        backend: model.info.backend.clone(),
        schedule,
    };
    crate::testing::crafted_archive(&header, len, tokens, rows, payload)
}

#[test]
fn crafted_claims_fail_early() {
    let big = Schedule {
        block_size: format::MAX_BLOCK_SIZE,
        max_segments: 1,
        min_segment_tokens: 1,
        window: 0,
    };
    for payload in [&[][..], &[0u8; 64][..]] {
        let archive = crafted(
            big,
            format::MAX_BLOCK_SIZE,
            format::MAX_BLOCK_SIZE,
            1,
            payload,
        );
        let mut model = BigramModel::new(1);
        let err = Decompressor::new(archive.as_slice())
            .unwrap()
            .run(&mut Vec::new(), &mut model, &Limits::default(), &mut Silent)
            .unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
        // 64 MiB claimed; the model learns to expect what the zeros decode to, so it may take
        // until the first check value to notice.
        let steps = model.steps as u64;
        assert!(steps <= crate::coder::CHECK_INTERVAL, "{steps} steps");
    }
    // Rows that the limits refuse are refused before the model runs.
    let wide = Schedule {
        max_segments: format::MAX_SEGMENTS,
        ..big
    };
    let archive = crafted(wide, 1 << 20, 1 << 20, format::MAX_SEGMENTS, &[]);
    let mut model = BigramModel::new(1);
    let err = Decompressor::new(archive.as_slice())
        .unwrap()
        .run(
            &mut Vec::new(),
            &mut model,
            &Limits { memory: 64 << 20 },
            &mut Silent,
        )
        .unwrap_err();
    assert!(matches!(err, Error::MemoryLimit { .. }), "{err}");
    assert_eq!(model.steps, 0);
}

/// The fast level's model predicts bits and is coded in one stream per block
/// ([`bitwise`](super::bitwise)): every kind of input round-trips, across blocks.
#[test]
fn bit_coded_model_round_trips_assorted_inputs() {
    use crate::models::fast::Fast;
    let s = small_schedule();
    for data in assorted_inputs() {
        let (_, summary) =
            crate::models::testing::round_trip(&mut Fast::new(), &mut Fast::new(), &data, &s);
        assert_eq!(summary.original_len, data.len() as u64);
    }
    // Text is coded, and well: the first block of repetitive text in under a bit per byte.
    let data = text(20_000);
    let (_, summary) =
        crate::models::testing::round_trip(&mut Fast::new(), &mut Fast::new(), &data, &s);
    assert_eq!(summary.coded_blocks, 5);
    assert!(summary.archive_len * 8 < data.len() as u64, "{summary:?}");
}

#[test]
fn bit_coded_corruption_and_crafted_claims_are_refused() {
    use crate::models::fast::Fast;
    let data = text(3000);
    let mut archive = Vec::new();
    compress(
        &mut data.as_slice(),
        &mut archive,
        &mut Fast::new(),
        &small_schedule(),
        &Limits::default(),
        BinaryBlocks::Model,
        &mut Silent,
    )
    .unwrap();
    let decode = |bytes: &[u8]| {
        Decompressor::new(bytes).and_then(|d| {
            d.run(
                &mut Vec::new(),
                &mut Fast::new(),
                &Limits::default(),
                &mut Silent,
            )
        })
    };
    decode(&archive).unwrap();
    // Every third byte flipped (each decode allocates the model's tables: all would be slow).
    for i in (0..archive.len()).step_by(3) {
        let mut bad = archive.clone();
        bad[i] ^= 0x10;
        assert!(decode(&bad).is_err(), "flip at {i} accepted");
    }
    // Hostile headers: the largest block with no coded data stops within the first bytes, and
    // a block claiming several segments is refused before decoding.
    let model = Fast::new();
    let header = Header {
        writer: format::WRITER.into(),
        model_name: crate::models::fast::NAME.into(),
        fingerprint: model.info().fingerprint,
        tokenizer: "bytes".into(),
        backend: model.info().backend.clone(),
        schedule: Schedule {
            block_size: format::MAX_BLOCK_SIZE,
            max_segments: 4,
            min_segment_tokens: 1,
            window: 0,
        },
    };
    let len = format::MAX_BLOCK_SIZE;
    let archive = crate::testing::crafted_archive(&header, len, len, 1, &[]);
    let err = decode(&archive).unwrap_err().to_string();
    let decoded: u64 = err
        .split("ends after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(decoded < 1 << 16, "{err}");
    let archive = crate::testing::crafted_archive(&header, 4096, 4096, 2, &[0; 64]);
    let err = decode(&archive).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt(m) if m.contains("2 segments")),
        "{err}"
    );
}

/// Text in any encoding is text; executables, counters and UTF-16 are not.
#[test]
fn binary_is_told_from_text() {
    let polish = "Zażółć gęślą jaźń.\r\n\tKolumna\x0cstrona \x1b[1mgruba\x1b[0m\n".repeat(50);
    assert!(!looks_binary(polish.as_bytes()));
    assert!(!looks_binary(&text(5000)));
    let latin2: Vec<u8> = (0..4000u32)
        .map(|i| [b'a', 0xB1, b' ', 0xEA][i as usize % 4])
        .collect();
    assert!(!looks_binary(&latin2));
    let counters: Vec<u8> = (0u32..1000).flat_map(|i| (i * 7).to_le_bytes()).collect();
    assert!(looks_binary(&counters));
    let utf16: Vec<u8> = "plain words"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert!(looks_binary(&utf16));
    // One control byte in 256 is still text (a stray NUL in a log); more is not.
    let mut edge = text(2560);
    for i in (0..2560).step_by(256) {
        edge[i] = 0;
    }
    assert!(!looks_binary(&edge));
    edge[1] = 0;
    assert!(looks_binary(&edge));
}

/// Counters in little-endian words: not text, not random.
fn counters(n: u32) -> Vec<u8> {
    (0..n).flat_map(|i| (i * 7).to_le_bytes()).collect()
}

/// Blocks that look binary go to the fast model when asked, and their headers say so; text
/// blocks stay with the archive's model; a decoder told nothing decodes both. Asked for the
/// model, every block is the model's.
#[test]
fn binary_blocks_go_to_the_fast_model_when_asked() {
    let mut data = text(4096);
    data.extend_from_slice(&counters(1024));
    data.extend_from_slice(&text(1000));
    for (binary, fast, coded) in [(BinaryBlocks::Fast, 1, 2), (BinaryBlocks::Model, 0, 3)] {
        let mut archive = Vec::new();
        let s = compress(
            &mut data.as_slice(),
            &mut archive,
            &mut BigramModel::new(1),
            &small_schedule(),
            &Limits::default(),
            binary,
            &mut Silent,
        )
        .unwrap();
        assert_eq!((s.fast_blocks, s.coded_blocks), (fast, coded), "{binary:?}");
        assert_eq!(inspect(archive.as_slice()).unwrap().fast_blocks, fast);
        // The same archive with three threads, written block by block.
        let mut again = Vec::new();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            let mut model = BigramModel::new(1);
            let mut writer =
                ArchiveWriter::new(&mut again, &model, &small_schedule(), &Limits::default())
                    .unwrap();
            writer.binary_blocks(binary);
            for block in data.chunks(4096) {
                writer.write_block(block, &mut model, &mut Silent).unwrap();
            }
            writer.finish().unwrap();
        });
        assert_eq!(again, archive, "{binary:?}");
        let mut out = Vec::new();
        let d = Decompressor::new(archive.as_slice())
            .unwrap()
            .run(
                &mut out,
                &mut BigramModel::new(1),
                &Limits::default(),
                &mut Silent,
            )
            .unwrap();
        assert_eq!(out, data);
        assert_eq!(d.fast_blocks, fast);
        if binary == BinaryBlocks::Fast {
            // Damage anywhere in the fast block (header or payload) is refused, and a decoder
            // whose memory limit is below the fast model's tables refuses before decoding.
            let at = (0..archive.len())
                .find(|&i| archive[i..].starts_with(&[0x80, 0x20, 2]))
                .expect("the fast block's header: length 4096, kind 2");
            for i in (at..at + 40).chain((at + 40..archive.len() - 40).step_by(97)) {
                let mut bad = archive.clone();
                bad[i] ^= 0x10;
                let result = Decompressor::new(bad.as_slice()).and_then(|d| {
                    d.run(
                        &mut Vec::new(),
                        &mut BigramModel::new(1),
                        &Limits::default(),
                        &mut Silent,
                    )
                });
                assert!(result.is_err(), "flip at {i} accepted");
            }
            let tight = Limits { memory: 16 << 20 };
            let err = Decompressor::new(archive.as_slice())
                .unwrap()
                .run(
                    &mut Vec::new(),
                    &mut BigramModel::new(1),
                    &tight,
                    &mut Silent,
                )
                .unwrap_err();
            assert!(matches!(err, Error::MemoryLimit { .. }), "{err}");
        }
    }
}

/// Fast blocks that lie are refused before any work they claim: a payload longer than the
/// block, a block longer than the schedule's, a 64 MiB block whose payload is empty or short
/// (a clear error, no hang, no panic).
#[test]
fn crafted_fast_blocks_are_refused_early() {
    let big = Schedule {
        block_size: format::MAX_BLOCK_SIZE,
        max_segments: 1,
        min_segment_tokens: 1,
        window: 0,
    };
    let archive = |schedule: Schedule, len: u64, payload_len: u64, payload: &[u8]| {
        // The coded-block helper's header, then a fast block instead.
        let mut out = crafted(schedule, 1, 1, 1, &[]);
        let header_len = ArchiveReader::new(out.as_slice()).unwrap().bytes_read();
        out.truncate(header_len as usize);
        BlockHeader::Fast {
            len,
            payload_len,
            payload_crc: crc32fast::hash(payload),
            crc: 0,
        }
        .write(&mut out)
        .unwrap();
        out.extend_from_slice(payload);
        out
    };
    let decode = |a: &[u8]| {
        Decompressor::new(a).and_then(|d| {
            d.run(
                &mut Vec::new(),
                &mut BigramModel::new(1),
                &Limits::default(),
                &mut Silent,
            )
        })
    };
    for (what, a) in [
        (
            "payload longer than the block",
            archive(big, 100, 200, &[1; 200]),
        ),
        (
            "block longer than the schedule",
            archive(small_schedule(), 5000, 10, &[1; 10]),
        ),
        (
            "64 MiB from nothing",
            archive(big, format::MAX_BLOCK_SIZE, 0, &[]),
        ),
        (
            "64 MiB from 64 bytes",
            archive(big, format::MAX_BLOCK_SIZE, 64, &[7; 64]),
        ),
    ] {
        let start = std::time::Instant::now();
        let err = decode(&a).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt(_) | Error::Truncated(_)),
            "{what}: {err}"
        );
        eprintln!("{what}: {err} ({:.2} s)", start.elapsed().as_secs_f64());
    }
}
