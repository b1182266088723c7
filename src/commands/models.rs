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
    /// it the first time.
    pub fn get(&mut self, spec: &str, weights: Option<&str>) -> Result<&mut dyn LanguageModel> {
        let key = (spec.to_string(), weights.map(str::to_string));
        if !self.loaded.contains_key(&key) {
            let model = models::load(spec, &self.device, weights, &self.registry)
                .with_context(|| format!("model '{spec}'"))?;
            self.loaded.insert(key.clone(), model);
        }
        Ok(self.loaded.get_mut(&key).expect("just inserted").as_mut())
    }
}
