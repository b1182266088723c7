//! Full decompression with the embedded default model, as `llmzip decompress` runs it, on small
//! inputs. Checksums are computed but not enforced in fuzzing builds (`cfg(fuzzing)`), so
//! mutated archives reach the model and the range decoder. Only archives of the default model
//! get past the fingerprint check: the seeds include some (`fuzz/seeds/default-*.llmz`, and the
//! golden archive of the default).
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use llmzip::unstable::codec::{Decompressor, Limits};
use llmzip::{Registry, Silent};
use llmzip::unstable::models::{self, LanguageModel, DEFAULT_MODEL};

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
    // A tighter limit than the CLI's 4 GiB, and just above what the default model needs for any
    // block (its tables are of fixed size: about 200 MiB of them, of which a small input
    // touches only a few pages), so that every check is the CLI's and a claimed large block
    // still ends early on a short payload. (It was 16 MiB while the default's tables grew with
    // the block; with fixed tables that refused every block before the model ran.)
    let limits = Limits { memory: 320 << 20 };
    let mut out = Vec::new();
    MODEL.with(|m| {
        let _ = decompressor.run(&mut out, m.borrow_mut().as_mut(), &limits, &mut Silent);
    });
});
