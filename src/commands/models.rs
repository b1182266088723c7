//! Loads models on demand and keeps them for the rest of the run, so that compressing many files
//! loads each model once.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::Device;
use llmzip::models::{self, LanguageModel};
use llmzip::Registry;

pub struct ModelCache {
    device: Device,
    registry: Registry,
    loaded: HashMap<(String, Option<String>, bool), Box<dyn LanguageModel>>,
}

/// What a model is loaded for: new archives (where `f32` on the CPU means `f32-portable`) or an
/// archive's own weight format.
#[derive(Clone, Copy)]
enum Purpose {
    Compress,
    Decompress { download: bool },
}

impl Purpose {
    fn compress(self) -> bool {
        matches!(self, Purpose::Compress)
    }
}

impl ModelCache {
    pub fn new(device: Device) -> Self {
        ModelCache {
            device,
            registry: Registry::from_env(),
            loaded: HashMap::new(),
        }
    }

    /// The model for `spec` (a built-in name or a path) with weight format `weights`, loading
    /// it the first time, to make new archives with ([`models::load_for_compression`]). A
    /// model the user named may be downloaded.
    pub fn get(&mut self, spec: &str, weights: Option<&str>) -> Result<&mut dyn LanguageModel> {
        self.get_from(spec, weights, Purpose::Compress)
    }

    /// [`get`](Self::get) for a model that an archive names: downloaded only if `download`
    /// (the user's `--allow-download`).
    pub fn get_named_by_archive(
        &mut self,
        spec: &str,
        weights: Option<&str>,
        download: bool,
    ) -> Result<&mut dyn LanguageModel> {
        self.get_from(spec, weights, Purpose::Decompress { download })
    }

    /// The registry models are looked up in (without downloads).
    pub fn registry(&self) -> Registry {
        self.registry.clone().without_downloads()
    }

    fn get_from(
        &mut self,
        spec: &str,
        weights: Option<&str>,
        purpose: Purpose,
    ) -> Result<&mut dyn LanguageModel> {
        let key = (
            spec.to_string(),
            weights.map(str::to_string),
            purpose.compress(),
        );
        if !self.loaded.contains_key(&key) {
            let model = match purpose {
                Purpose::Compress => {
                    models::load_for_compression(spec, &self.device, weights, &self.registry)
                }
                Purpose::Decompress { download: true } => {
                    models::load(spec, &self.device, weights, &self.registry)
                }
                Purpose::Decompress { download: false } => {
                    models::load(spec, &self.device, weights, &self.registry())
                }
            }
            .with_context(|| format!("model '{spec}'"))?;
            self.loaded.insert(key.clone(), model);
        }
        Ok(self.loaded.get_mut(&key).expect("just inserted").as_mut())
    }
}
