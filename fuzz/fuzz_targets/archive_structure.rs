//! The container parser: header, block headers, payload skipping and trailer, without a model.
//! Any input must give `Ok` or a typed error: no panic, no allocation sized by a claimed length.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = llmzip::unstable::codec::inspect(data);
});
