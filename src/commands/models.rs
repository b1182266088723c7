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
    loaded: HashMap<(String, Option<String>), Box<dyn LanguageModel>>,
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
    /// it the first time. A model the user named may be downloaded.
    pub fn get(&mut self, spec: &str, weights: Option<&str>) -> Result<&mut dyn LanguageModel> {
        self.get_from(spec, weights, true)
    }

    /// [`get`](Self::get) for a model that an archive names: downloaded only if `download`
    /// (the user's `--allow-download`).
    pub fn get_named_by_archive(
        &mut self,
        spec: &str,
        weights: Option<&str>,
        download: bool,
    ) -> Result<&mut dyn LanguageModel> {
        self.get_from(spec, weights, download)
    }

    /// The registry models are looked up in (without downloads).
    pub fn registry(&self) -> Registry {
        self.registry.clone().without_downloads()
    }

    fn get_from(
        &mut self,
        spec: &str,
        weights: Option<&str>,
        download: bool,
    ) -> Result<&mut dyn LanguageModel> {
        let key = (spec.to_string(), weights.map(str::to_string));
        if !self.loaded.contains_key(&key) {
            let registry = if download {
                self.registry.clone()
            } else {
                self.registry.clone().without_downloads()
            };
            let model = models::load(spec, &self.device, weights, &registry)
                .with_context(|| format!("model '{spec}'"))?;
            self.loaded.insert(key.clone(), model);
        }
        Ok(self.loaded.get_mut(&key).expect("just inserted").as_mut())
    }
}
