//! Where pretrained models are found: local model directories first, then the Hugging Face Hub
//! cache, then the Hub itself (through `hf-hub`).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File name of SmolLM2-135M-Instruct as unpacked by `scripts/fetch-models.sh`.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Files a GPT-2 directory needs.
const GPT2_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// Directories searched for model files, in order: `$LLMZIP_MODELS`, `./models`, and the
/// `models/` folder of the source tree this binary was built from (so a checkout works from
/// any directory).
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("LLMZIP_MODELS") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("models"));
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    dirs
}

/// The first `name` found in [`search_dirs`].
pub fn find_local(name: &str) -> Option<PathBuf> {
    search_dirs()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
}

/// The Hub repository of a built-in GPT-2 name.
fn repo_of(name: &str) -> &'static str {
    match name {
        "distilgpt2" => "distilbert/distilgpt2",
        _ => "openai-community/gpt2",
    }
}

/// A directory holding `name` (`gpt2` or `distilgpt2`): `<search dir>/<name>/`, else the
/// Hugging Face cache, else downloaded from the Hub.
pub fn gpt2_dir(name: &str) -> Result<PathBuf> {
    if let Some(dir) = find_local(name) {
        return Ok(dir);
    }
    let repo = repo_of(name);
    let cache = hf_hub::Cache::from_env().model(repo.to_string());
    let cached: Option<Vec<PathBuf>> = GPT2_FILES.iter().map(|f| cache.get(f)).collect();
    if let Some(paths) = cached {
        return Ok(parent(&paths[0]));
    }
    let how = format!(
        "download config.json, model.safetensors and tokenizer.json of \
         https://huggingface.co/{repo} on a connected machine into a directory and pass it with \
         -m ./{name}, or put it at $LLMZIP_MODELS/{name} or ./models/{name}"
    );
    if std::env::var_os("HF_HUB_OFFLINE").is_some_and(|v| v != "0" && !v.is_empty()) {
        return Err(Error::Model(format!(
            "{name} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: {how}"
        )));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| {
            Error::Model(format!(
                "cannot start the Hugging Face Hub client ({e}): {how}"
            ))
        })?;
    let model = api.model(repo.to_string());
    let mut first = None;
    for file in GPT2_FILES {
        let path = model.get(file).map_err(|e| {
            Error::Model(format!(
                "cannot download {file} of {repo} from the Hugging Face Hub ({e}); if this \
                 machine is offline, {how}"
            ))
        })?;
        first.get_or_insert(path);
    }
    Ok(parent(&first.expect("GPT2_FILES is not empty")))
}

fn parent(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}
