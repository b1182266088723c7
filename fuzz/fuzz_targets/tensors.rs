//! The weight-file codec: recognising a container in arbitrary bytes (compression side), and
//! decoding an arbitrary tensor archive. Either must give `Ok` or a typed error: no panic, no
//! allocation sized by a claimed length. Inputs that do not start with `LLMT` get the magic
//! prepended, so the fuzzer spends its time past it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = llmzip::tensors::recognise(&mut &data[..], data.len() as u64);
    let archive: Vec<u8> = if data.starts_with(b"LLMT") {
        data.to_vec()
    } else {
        b"LLMT".iter().chain(data).copied().collect()
    };
    let mut out = Vec::new();
    let _ = llmzip::tensors::decompress(archive.as_slice(), &mut out, &mut llmzip::Silent);
});
