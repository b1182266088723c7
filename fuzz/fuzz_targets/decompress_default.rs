//! Full decompression with the embedded default model (`gru-cm`), as `llmzip decompress` runs
//! it, on small inputs. Checksums are computed but not enforced in fuzzing builds
//! (`cfg(fuzzing)`), so mutated archives reach the model and the range decoder.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use llmzip::codec::{Decompressor, Limits};
use llmzip::{Registry, Silent};
use llmzip::models::{self, LanguageModel, DEFAULT_MODEL};

thread_local! {
    /// Loaded once: loading is slow, and the reset at every block start makes runs independent.
    static MODEL: RefCell<Box<dyn LanguageModel>> = RefCell::new(
        models::load(
            DEFAULT_MODEL,
            &models::device("cpu").expect("cpu"),
            None,
            &Registry::with_dirs([]),
        )
            .expect("the default model loads"),
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(decompressor) = Decompressor::new(data) else {
        return;
    };
    // A tighter limit than the CLI's keeps each run small (gru-cm blocks up to ~27 KB), so the
    // fuzzer spends its time on many inputs rather than on long decodes of claimed large blocks;
    // the checks are the same.
    let limits = Limits { memory: 16 << 20 };
    let mut out = Vec::new();
    MODEL.with(|m| {
        let _ = decompressor.run(&mut out, m.borrow_mut().as_mut(), &limits, &mut Silent);
    });
});
