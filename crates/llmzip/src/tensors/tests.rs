//! Tensor archives end to end: round trips of every container and format, fallback, thread
//! independence, and damaged or crafted archives refused early without panics.

use super::*;
use crate::testing::{gguf_file, safetensors_file};
use std::time::Instant;

use crate::models::rng::SplitMix64;

pub(crate) fn lcg(state: &mut SplitMix64) -> u32 {
    state.next_u64() as u32
}

/// Bell-shaped weights (a sum of uniforms) whose scale changes with the column.
pub(crate) fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut s = SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            let g: f32 = (0..4)
                .map(|_| lcg(&mut s) as f32 / u32::MAX as f32 - 0.5)
                .sum();
            g * 0.02 * (1.0 + (i % 5) as f32)
        })
        .collect()
}

fn f32_bytes(w: &[f32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bf16_bytes(w: &[f32]) -> Vec<u8> {
    w.iter()
        .flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes())
        .collect()
}

fn compress_file(file: &[u8]) -> (Vec<u8>, Summary) {
    let (head, layout) = recognise(&mut &file[..], file.len() as u64).unwrap();
    let layout = layout.unwrap_or_else(|| Layout::bytes(file.len() as u64));
    let mut archive = Vec::new();
    let summary = compress(
        &head,
        &layout,
        &file[head.len()..],
        &mut archive,
        &mut crate::Silent,
    )
    .unwrap();
    assert_eq!(summary.archive_len, archive.len() as u64);
    (archive, summary)
}

fn decompress_vec(archive: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress(archive, &mut out, &mut crate::Silent)?;
    Ok(out)
}

/// A safetensors file (bf16 matrix, f32 vector, f16 matrix, i64) and a GGUF file (q4_1, f32,
/// q8_0, q4_0), both larger than one chunk in places.
fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let w = weights(1 << 21, 1);
    let f16: Vec<u8> = w[..4096]
        .iter()
        .flat_map(|x| {
            let b = x.to_bits();
            let e = (((b >> 23) & 255) as i32 - 127 + 15).clamp(0, 31) as u16;
            (((b >> 16) & 0x8000) as u16 | (e << 10) | ((b >> 13) & 0x3ff) as u16).to_le_bytes()
        })
        .collect();
    let st = safetensors_file(&[
        ("w", "BF16", vec![1024, 2048], bf16_bytes(&w)),
        ("b", "F32", vec![2048], f32_bytes(&w[..2048])),
        ("h", "F16", vec![64, 64], f16),
        ("i", "I64", vec![3], vec![9; 24]),
    ]);
    let mut s = SplitMix64::new(5);
    let mut q = |blocks: usize, unit: usize| -> Vec<u8> {
        (0..blocks * unit)
            .map(|i| match i % unit {
                0 => lcg(&mut s) as u8,
                1 => 0x2c + (lcg(&mut s) % 3) as u8,
                _ => (lcg(&mut s) % 13) as u8,
            })
            .collect()
    };
    let g = gguf_file(&[
        (vec![256, 1100], 3, q(8 * 1100, 20)),
        (vec![256], 0, f32_bytes(&w[..256])),
        (vec![64, 300], 8, q(2 * 300, 34)),
        (vec![32, 10], 2, q(10, 18)),
    ]);
    vec![("safetensors", st), ("gguf", g)]
}

#[test]
fn weight_files_round_trip_and_shrink() {
    for (name, file) in samples() {
        let (archive, summary) = compress_file(&file);
        assert_ne!(summary.layout.container, Container::None, "{name}");
        assert_eq!(decompress_vec(&archive).unwrap(), file, "{name}");
        assert!(
            archive.len() < file.len(),
            "{name}: {} of {}",
            archive.len(),
            file.len()
        );
        let info = inspect(archive.as_slice()).unwrap();
        assert_eq!(info.kinds, summary.kinds, "{name}");
        assert_eq!(info.original_len, file.len() as u64);
        assert_eq!(info.archive_len, archive.len() as u64);
    }
}

#[test]
fn anything_else_round_trips_as_bytes() {
    let mut s = SplitMix64::new(11);
    let random: Vec<u8> = (0..100_000).map(|_| lcg(&mut s) as u8).collect();
    for data in [
        Vec::new(),
        b"x".to_vec(),
        b"GGUF".to_vec(),
        b"{\"not\": \"safetensors\"}".to_vec(),
        random,
    ] {
        let (archive, summary) = compress_file(&data);
        assert_eq!(summary.layout.container, Container::None);
        assert_eq!(decompress_vec(&archive).unwrap(), data);
        assert!(archive.len() <= data.len() + 64 + data.len() / CHUNK_BYTES as usize * 8);
    }
}

/// An archive of a version this release does not know is refused by name, as a newer
/// llmzip's; this release writes version 2.
#[test]
fn unknown_versions_are_refused_by_name() {
    let (_, file) = samples().remove(0);
    let (mut archive, _) = compress_file(&file);
    assert_eq!(archive[4], 2, "the version byte");
    archive[4] = 3;
    let err = decompress_vec(&archive).unwrap_err().to_string();
    assert!(err.contains("version 3 is not known"), "{err}");
    assert!(err.contains("a newer llmzip wrote it"), "{err}");
}

#[test]
fn archives_do_not_depend_on_the_thread_count() {
    let (_, file) = samples().remove(0);
    let in_pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| compress_file(&file).0)
    };
    let one = in_pool(1);
    assert_eq!(one, in_pool(3));
    let decoded = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
        .install(|| decompress_vec(&one).unwrap());
    assert_eq!(decoded, file);
}

#[test]
fn damaged_archives_are_refused_without_panics_or_unchecked_output() {
    let file = gguf_file(&[(vec![64, 40], 3, (0..40 * 2 * 20).map(|i| i as u8).collect())]);
    let (archive, _) = compress_file(&file);
    for cut in 0..archive.len() {
        assert!(decompress_vec(&archive[..cut]).is_err(), "cut at {cut}");
        assert!(
            read_through_decoder(&archive[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    for i in 0..archive.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = archive.clone();
            bad[i] ^= bit;
            // Some bits do not matter (the coder's last bytes, raw padding); every output
            // that comes back must be the original.
            if let Ok(out) = decompress_vec(&bad) {
                assert_eq!(out, file, "flip at {i} decoded other bytes");
            }
            if let Ok(out) = read_through_decoder(&bad) {
                assert_eq!(out, file, "flip at {i} read other bytes");
            }
        }
    }
    let mut longer = archive.clone();
    longer.push(0);
    assert!(decompress_vec(&longer).is_err());
}

#[test]
fn crafted_claims_fail_at_the_first_chunk() {
    // A valid header that claims 1 TiB of q8_0, followed by one empty chunk.
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&[VERSION, 0, 0, 2]);
    let total = 34u64 << 35;
    varint::write_u64(&mut header, total).unwrap();
    varint::write_u64(&mut header, 1).unwrap();
    header.push(Kind::Q8_0 as u8);
    varint::write_u64(&mut header, total).unwrap();
    varint::write_u64(&mut header, 1 << 20).unwrap();
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    let mut archive = header.clone();
    archive.extend_from_slice(&[1, 0, 0, 0, 0, 1]);
    let start = Instant::now();
    let err = decompress_vec(&archive).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt(_) | Error::Truncated(_)),
        "{err}"
    );
    assert!(start.elapsed().as_secs() < 5);
    // More regions than bytes, and regions that do not add up, are refused in the header.
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&[VERSION, 0, 0, 0, 5, 100]);
    assert!(matches!(decompress_vec(&h), Err(Error::Corrupt(_))));
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

fn read_through_decoder(archive: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    Decoder::new(archive)
        .map_err(std::io::Error::other)?
        .read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn the_streaming_decoder_reads_what_decompress_writes() {
    for (name, file) in samples() {
        let (archive, _) = compress_file(&file);
        // One thread: batches of two chunks, so the samples span several batches.
        for threads in [1, 3] {
            let back = in_pool(threads, || read_through_decoder(&archive).unwrap());
            assert_eq!(back, file, "{name}, {threads} threads");
        }
        let mut longer = archive.clone();
        longer.push(0);
        assert!(read_through_decoder(&longer).is_err(), "{name}");
        for cut in [archive.len() - 1, archive.len() / 2, 20] {
            assert!(read_through_decoder(&archive[..cut]).is_err(), "{name}");
        }
    }
}

#[test]
fn errors_come_out_in_file_order_across_overlapped_batches() {
    // Batches of two chunks: [header, bf16], [f32, f16], [i64 bytes]. A damaged bf16 chunk in
    // the first batch is reported, not the cut in a later one that is read while it decodes.
    let (_, file) = samples().remove(0);
    let (archive, _) = compress_file(&file);
    let mut bad = archive[..archive.len() - 100].to_vec();
    bad[archive.len() / 3] ^= 0x40;
    {
        let mut out = Vec::new();
        let err = in_pool(1, || {
            decompress(bad.as_slice(), &mut out, &mut crate::Silent)
        })
        .unwrap_err();
        // The damage shows as a wrong checksum or as a payload that ends too soon.
        assert!(err.to_string().contains("a bf16 chunk"), "{err}");
        assert!(file.starts_with(&out) && out.len() < file.len() / 2);
    }
}

/// K-quants made by candle (llama.cpp's reference quantizers) from the GRU's real weights:
/// they round-trip, and modelling their fields beats coding the same regions as bytes (what
/// llmzip did before it knew them).
#[test]
fn k_quants_of_real_weights_round_trip_and_beat_bytes() {
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/gru/model.safetensors");
    let weights = candle_core::safetensors::load(path, &candle_core::Device::Cpu).unwrap();
    for (dtype, kind) in [
        (GgmlDType::Q4K, Kind::Q4K),
        (GgmlDType::Q5K, Kind::Q5K),
        (GgmlDType::Q6K, Kind::Q6K),
        (GgmlDType::Q5_0, Kind::Q5_0),
        (GgmlDType::Q5_1, Kind::Q5_1),
        (GgmlDType::Q2K, Kind::Q2K),
        (GgmlDType::Q3K, Kind::Q3K),
    ] {
        let w = &weights["rnn.1.weight_hh"]; // 768 × 256
        let q = QTensor::quantize(w, dtype).unwrap();
        let name = gguf_file::Value::String("k".into());
        let mut file = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut file, &[("general.name", &name)], &[("w", &q)]).unwrap();
        let file = file.into_inner();
        let (archive, summary) = compress_file(&file);
        assert!(summary.kinds.iter().any(|(k, _)| *k == kind), "{kind:?}");
        assert_eq!(decompress_vec(&archive).unwrap(), file);
        let as_bytes = Layout {
            container: summary.layout.container,
            regions: summary
                .layout
                .regions
                .iter()
                .map(|r| Region {
                    kind: Kind::Bytes,
                    len: r.len,
                    row: 0,
                })
                .collect(),
        };
        let mut plain = Vec::new();
        compress(&[], &as_bytes, &file[..], &mut plain, &mut crate::Silent).unwrap();
        eprintln!(
            "{kind:?}: {} bytes, modelled {}, as bytes {}",
            file.len(),
            archive.len(),
            plain.len()
        );
        assert!(archive.len() < plain.len(), "{kind:?}");
    }
}

/// Every GGML type of ggml.h, a tensor each (two rows of two blocks), plus one of a type id this
/// build does not know: the file is recognised as GGUF, the modelled types get their own
/// regions, the others are bytes inside it, and the archive round-trips. Before, a single
/// q5_0 tensor (common in real Q4_K_M files) made the whole file unrecognised.
#[test]
fn a_gguf_of_every_ggml_type_is_recognised_and_round_trips() {
    use super::layout::{ggml_type, GGML_TYPES};
    let mut s = SplitMix64::new(7);
    let mut tensors: Vec<(Vec<u64>, u32, Vec<u8>)> = GGML_TYPES
        .iter()
        .map(|t| {
            let data = (0..4 * t.bytes).map(|_| lcg(&mut s) as u8).collect();
            (vec![2 * t.block, 2], t.id, data)
        })
        .collect();
    assert!(ggml_type(u32::MAX).is_none());
    tensors.push((vec![64], u32::MAX, vec![0x5A; 40]));
    let file = gguf_file(&tensors);
    let (archive, summary) = compress_file(&file);
    assert_eq!(summary.layout.container, Container::Gguf);
    for kind in [
        Kind::F32,
        Kind::F16,
        Kind::Bf16,
        Kind::Q4_0,
        Kind::Q4_1,
        Kind::Q5_0,
        Kind::Q5_1,
        Kind::Q8_0,
        Kind::Q4K,
        Kind::Q5K,
        Kind::Q6K,
        Kind::Q2K,
        Kind::Q3K,
    ] {
        assert!(
            summary.layout.regions.iter().any(|r| r.kind == kind),
            "{kind:?} has no region"
        );
    }
    assert_eq!(decompress_vec(&archive).unwrap(), file);
    // The table is ggml's: ids unique and ascending, a whole number of bytes per block, and
    // between 1.5 and 64 bits per value (TQ1_0's 1.69 the fewest, F64/I64 the most).
    for pair in GGML_TYPES.windows(2) {
        assert!(pair[0].id < pair[1].id);
    }
    for t in GGML_TYPES {
        let bits = (t.bytes * 8) as f64 / t.block as f64;
        assert!((1.5..=64.0).contains(&bits), "{}: {bits}", t.name);
        assert!(
            t.kind == Kind::Bytes || t.kind.unit() == t.bytes,
            "{}",
            t.name
        );
    }
}

/// A base and its fine-tune: `w` and `b` nudged (a few ulps, as a small learning rate moves
/// them), `extra` only in the fine-tune, `h` reshaped (no partner), `v` unchanged.
fn fine_tune_pair() -> (Vec<u8>, Vec<u8>) {
    let w = weights(300_000, 1);
    let nudge = |w: &[f32], seed: u64| -> Vec<f32> {
        let mut s = SplitMix64::new(seed);
        w.iter()
            .map(|x| f32::from_bits(x.to_bits().wrapping_add(lcg(&mut s) % 64).wrapping_sub(32)))
            .collect()
    };
    let b = weights(4096, 2);
    let v = weights(512, 3);
    let base = safetensors_file(&[
        ("w", "F32", vec![600, 500], f32_bytes(&w)),
        ("b", "BF16", vec![4096], bf16_bytes(&b)),
        ("h", "F32", vec![64, 8], f32_bytes(&v)),
        ("v", "F32", vec![512], f32_bytes(&v)),
    ]);
    let tuned = safetensors_file(&[
        ("w", "F32", vec![600, 500], f32_bytes(&nudge(&w, 4))),
        ("b", "BF16", vec![4096], bf16_bytes(&nudge(&b, 5))),
        ("extra", "F32", vec![100], f32_bytes(&weights(100, 6))),
        ("h", "F32", vec![8, 64], f32_bytes(&v)),
        ("v", "F32", vec![512], f32_bytes(&v)),
    ]);
    (base, tuned)
}

/// A fine-tune coded against its base comes back exactly with that base, is smaller than coded
/// alone, and is refused — with what to do — without a base or with another one; its sizes
/// read without the base.
#[test]
fn fine_tunes_round_trip_against_their_base_only() {
    let (base_bytes, tuned) = fine_tune_pair();
    let entries = tensors(&tuned[..64.min(tuned.len())], tuned.len() as u64);
    assert!(entries.is_none(), "a cut header is no tensor table");
    let (dir, base, archive, s) = delta_archive(&base_bytes, &tuned);
    let (head, _) = recognise(&mut &tuned[..], tuned.len() as u64).unwrap();
    let delta = base.delta(&tensors(&head, tuned.len() as u64).unwrap());
    // w, b and v have partners; extra has none, h another shape.
    assert_eq!(delta.patches.len(), 3);
    let (alone, _) = compress_file(&tuned);
    assert!(
        (archive.len() as f64) < 0.8 * alone.len() as f64,
        "{} against {} alone",
        archive.len(),
        alone.len()
    );
    assert!(s
        .base
        .is_some_and(|(id, patched)| id == base.id() && patched > 0));
    let mut out = Vec::new();
    decompress_with_base(&archive[..], &mut out, &mut crate::Silent, Some(&base)).unwrap();
    assert_eq!(out, tuned);
    // The stream decoder too.
    let mut d = Decoder::with_base(&archive[..], std::sync::Arc::new(base)).unwrap();
    let mut streamed = Vec::new();
    d.read_to_end(&mut streamed).unwrap();
    assert_eq!(streamed, tuned);

    let err = decompress_vec(&archive).unwrap_err().to_string();
    assert!(err.contains("--base") && err.contains("SHA-256"), "{err}");
    let other_path = dir.path().join("other.safetensors");
    std::fs::write(&other_path, &tuned).unwrap();
    let other = Base::open(&other_path).unwrap();
    let mut out = Vec::new();
    let err = decompress_with_base(&archive[..], &mut out, &mut crate::Silent, Some(&other))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not the file this archive was made against"),
        "{err}"
    );
    assert!(out.is_empty());
    assert_eq!(
        inspect(&archive[..]).unwrap().original_len,
        tuned.len() as u64
    );

    // A base that is not a weight file is refused by name.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"not weights").unwrap();
    let err = Base::open(&text).err().unwrap().to_string();
    assert!(
        err.contains("notes.txt") && err.contains("safetensors"),
        "{err}"
    );
}

/// `tuned` coded against `base` (written to a temporary directory, kept alive by the first
/// value): the opened base, the archive and its summary.
fn delta_archive(base: &[u8], tuned: &[u8]) -> (tempfile::TempDir, Base, Vec<u8>, Summary) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("base.safetensors");
    std::fs::write(&path, base).unwrap();
    let base = Base::open(&path).unwrap();
    let (head, layout) = recognise(&mut &tuned[..], tuned.len() as u64).unwrap();
    let mut archive = Vec::new();
    let rest = &tuned[head.len()..];
    let layout = layout.expect("a weight file");
    let summary = compress_delta(
        &head,
        &layout,
        rest,
        &mut archive,
        &mut crate::Silent,
        &base,
    )
    .unwrap();
    (dir, base, archive, summary)
}

/// A pair that shares nothing useful (unrelated weights under the same names) costs no more
/// than coding alone, plus a byte per chunk and the header: each chunk keeps the smaller coding.
#[test]
fn an_unrelated_base_costs_next_to_nothing() {
    let file = |seed| {
        safetensors_file(&[(
            "w",
            "F32",
            vec![1000, 300],
            f32_bytes(&weights(300_000, seed)),
        )])
    };
    let (base_bytes, tuned) = (file(7), file(8));
    let (delta, alone) = delta_and_alone(&base_bytes, &tuned);
    assert!(delta <= alone + 64, "{delta} against {alone}");
}

/// Damaged delta archives fail with an error, never a panic or unchecked output.
#[test]
fn damaged_delta_archives_are_refused() {
    let (base_bytes, tuned) = fine_tune_pair();
    let (_dir, base, archive, _) = delta_archive(&base_bytes, &tuned);
    let mut s = SplitMix64::new(9);
    for _ in 0..200 {
        let mut bad = archive.clone();
        let at = (s.next_u64() % bad.len() as u64) as usize;
        bad[at] ^= 1 << (s.next_u64() % 8);
        let mut out = Vec::new();
        if decompress_with_base(&bad[..], &mut out, &mut crate::Silent, Some(&base)).is_ok() {
            assert_eq!(out, tuned, "a flipped bit at {at} decoded to other bytes");
        }
    }
    for cut in [7, 40, archive.len() / 2, archive.len() - 1] {
        let mut out = Vec::new();
        assert!(
            decompress_with_base(&archive[..cut], &mut out, &mut crate::Silent, Some(&base))
                .is_err()
        );
    }
}

/// GGUF too: tensors matched by name (q8_0 blocks of which a few quants moved, an f32 vector
/// nudged), round trip through their base, smaller than alone.
#[test]
fn gguf_fine_tunes_round_trip_against_their_base() {
    let mut s = SplitMix64::new(12);
    let blocks: Vec<u8> = (0..4000 * 34)
        .map(|i| match i % 34 {
            0 => lcg(&mut s) as u8,
            1 => 0x2c,
            _ => (lcg(&mut s) % 40) as u8,
        })
        .collect();
    let mut moved = blocks.clone();
    for i in (2..moved.len()).step_by(7) {
        if i % 34 >= 2 {
            moved[i] = moved[i].wrapping_add(1);
        }
    }
    let w = weights(1000, 2);
    let nudged: Vec<f32> = w.iter().map(|x| f32::from_bits(x.to_bits() ^ 3)).collect();
    let base = gguf_file(&[(vec![32, 4000], 8, blocks), (vec![1000], 0, f32_bytes(&w))]);
    let tuned = gguf_file(&[
        (vec![32, 4000], 8, moved),
        (vec![1000], 0, f32_bytes(&nudged)),
    ]);
    let (delta, alone) = delta_and_alone(&base, &tuned);
    assert!(delta < alone / 2, "{delta} against {alone}");
}

/// A delta archive of `tuned` against `base`, checked to decode back to `tuned`: its length,
/// and that of `tuned` coded alone.
fn delta_and_alone(base: &[u8], tuned: &[u8]) -> (usize, usize) {
    let (_dir, b, archive, _) = delta_archive(base, tuned);
    let mut out = Vec::new();
    decompress_with_base(&archive[..], &mut out, &mut crate::Silent, Some(&b)).unwrap();
    assert_eq!(out, tuned);
    (archive.len(), compress_file(tuned).0.len())
}
