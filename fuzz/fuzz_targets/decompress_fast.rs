//! Full decompression with `fast1`, the model of the fast levels, whose blocks are coded bit by
//! bit (`codec/bitwise.rs`), on small inputs. Checksums are computed but not enforced in
//! fuzzing builds (`cfg(fuzzing)`), so mutated archives reach the model and the binary decoder.
//! Only archives of `fast1` get past the fingerprint check: its golden archive
//! (`tests/golden/fast1.txt.llmz`, copied into the corpus by scripts/fuzz.sh) is the seed.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use llmzip::unstable::codec::{Decompressor, Limits};
use llmzip::unstable::models::{self, LanguageModel};
use llmzip::{Registry, Silent};

thread_local! {
    static MODEL: RefCell<Box<dyn LanguageModel>> = RefCell::new(
        models::load(
            models::fast::NAME,
            &models::device("cpu").expect("cpu"),
            None,
            &Registry::with_dirs([]),
        )
        .expect("fast1 loads"),
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(decompressor) = Decompressor::new(data) else {
        return;
    };
    // Just above what fast1 claims for a 1 MiB block, so a claimed 64 MiB block is refused by
    // the limit and smaller false claims end early on a short payload.
    let limits = Limits { memory: 160 << 20 };
    let mut out = Vec::new();
    MODEL.with(|m| {
        let _ = decompressor.run(&mut out, m.borrow_mut().as_mut(), &limits, &mut Silent);
    });
});
