//! Where named models come from: a registry of local directories, then (with the `hub` feature)
//! the Hugging Face cache and the Hub itself.
//!
//! The registry is a value, not a global: a program decides where its models live
//! ([`Registry::with_dirs`]) or takes the conventional places ([`Registry::from_env`]). Nothing
//! about the build (such as the source tree it was compiled in) decides where an installed
//! binary looks, so a copied or installed `llmzip` behaves the same everywhere.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File name of SmolLM2-135M-Instruct as unpacked by `scripts/fetch-models.sh`.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Files a GPT-2 directory needs.
#[cfg_attr(not(feature = "hub"), allow(dead_code))]
const GPT2_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// Where model files are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    dirs: Vec<PathBuf>,
    hub: bool,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::from_env()
    }
}

impl Registry {
    /// The conventional places, in order: `$LLMZIP_MODELS`, `./models`, and the user's data
    /// directory (`$XDG_DATA_HOME/llmzip/models`, else `~/.local/share/llmzip/models`); then,
    /// with the `hub` feature, the Hugging Face cache and Hub (for `gpt2` / `distilgpt2`).
    pub fn from_env() -> Registry {
        let mut dirs = Vec::new();
        if let Some(d) = std::env::var_os("LLMZIP_MODELS").filter(|d| !d.is_empty()) {
            dirs.push(PathBuf::from(d));
        }
        dirs.push(PathBuf::from("models"));
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|d| !d.is_empty())
                    .map(|h| Path::new(&h).join(".local/share"))
            });
        if let Some(data) = data_home {
            dirs.push(data.join("llmzip/models"));
        }
        Registry { dirs, hub: true }
    }

    /// Only `dirs`, in order; never the Hugging Face cache or network.
    pub fn with_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> Registry {
        Registry {
            dirs: dirs.into_iter().collect(),
            hub: false,
        }
    }

    /// The directories searched, in order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The first `name` (a file or directory) found in [`dirs`](Self::dirs).
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        self.dirs.iter().map(|d| d.join(name)).find(|p| p.exists())
    }

    fn searched(&self) -> String {
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        if dirs.is_empty() {
            "no model directories are configured".into()
        } else {
            format!("looked in {}", dirs.join(", "))
        }
    }

    /// SmolLM2-135M-Instruct's GGUF file.
    pub fn smollm2(&self) -> Result<PathBuf> {
        self.find(SMOLLM2_FILE).ok_or_else(|| {
            Error::Model(format!(
                "SmolLM2-135M is not downloaded ({}): run scripts/fetch-models.sh in the llmzip \
                 source tree and set LLMZIP_MODELS to its models/ directory, or put \
                 {SMOLLM2_FILE} in one of those directories, or pass the file with \
                 -m path/to/model.gguf",
                self.searched()
            ))
        })
    }

    /// A directory holding `name` (`gpt2` or `distilgpt2`): `<dir>/<name>/` of a registry
    /// directory, else (with the `hub` feature) the Hugging Face cache, else the Hub.
    pub fn gpt2_dir(&self, name: &str) -> Result<PathBuf> {
        if let Some(dir) = self.find(name) {
            return Ok(dir);
        }
        let repo = match name {
            "distilgpt2" => "distilbert/distilgpt2",
            _ => "openai-community/gpt2",
        };
        let how = format!(
            "download config.json, model.safetensors and tokenizer.json of \
             https://huggingface.co/{repo} on a connected machine into a directory and pass it \
             with -m ./{name}, or put it at <dir>/{name} for a model directory ({})",
            self.searched()
        );
        if !self.hub {
            return Err(Error::Model(format!(
                "{name} is not available locally: {how}"
            )));
        }
        hub_dir(name, repo, &how)
    }
}

#[cfg(not(feature = "hub"))]
fn hub_dir(name: &str, _repo: &str, how: &str) -> Result<PathBuf> {
    Err(Error::Model(format!(
        "{name} is not available locally and this build cannot reach the Hugging Face Hub \
         (llmzip's `hub` feature is off): {how}"
    )))
}

#[cfg(feature = "hub")]
fn hub_dir(name: &str, repo: &str, how: &str) -> Result<PathBuf> {
    let cache = hf_hub::Cache::from_env().model(repo.to_string());
    let cached: Option<Vec<PathBuf>> = GPT2_FILES.iter().map(|f| cache.get(f)).collect();
    if let Some(paths) = cached {
        return Ok(parent(&paths[0]));
    }
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

#[cfg(feature = "hub")]
fn parent(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_directories_are_searched_in_order_and_named_in_errors() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(b.path().join(SMOLLM2_FILE), b"x").unwrap();
        let r = Registry::with_dirs([a.path().into(), b.path().into()]);
        assert_eq!(r.smollm2().unwrap(), b.path().join(SMOLLM2_FILE));
        std::fs::write(a.path().join(SMOLLM2_FILE), b"x").unwrap();
        assert_eq!(r.smollm2().unwrap(), a.path().join(SMOLLM2_FILE));

        let none = Registry::with_dirs([b.path().join("nothing")]);
        let err = none.smollm2().unwrap_err().to_string();
        assert!(
            err.contains("nothing") && err.contains("fetch-models"),
            "{err}"
        );
        let err = none.gpt2_dir("gpt2").unwrap_err().to_string();
        assert!(
            err.contains("huggingface.co/openai-community/gpt2"),
            "{err}"
        );
    }
}
