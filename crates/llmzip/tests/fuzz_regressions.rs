//! Inputs the fuzzers found (fuzz/artifacts), kept as tests: each must now give a clean error.

/// `fuzz/fuzz_targets/tensors.rs`, 2026-12-01: a damaged f32 chunk decoded an exponent symbol
/// below the chunk's reference window (reference − 27 < 0), which wrapped into a table index
/// far past the end: a panic instead of a checksum error.
#[test]
fn a_garbage_exponent_below_the_window_is_a_corrupt_chunk_not_a_panic() {
    let input = include_bytes!("data/tensors-exponent-wrap.bin");
    let archive: Vec<u8> = if input.starts_with(b"LLMT") {
        input.to_vec()
    } else {
        b"LLMT".iter().chain(input.iter()).copied().collect()
    };
    let mut out = Vec::new();
    let result = llmzip::tensors::decompress(archive.as_slice(), &mut out, &mut llmzip::Silent);
    assert!(result.is_err(), "decoded {} bytes", out.len());
}
