//! Training and validation text, split by file: validation bytes never come from a training file.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Training and validation bytes.
pub struct Corpus {
    train: Vec<u8>,
    valid: Vec<u8>,
    /// Files in each split, for reports.
    pub train_files: Vec<PathBuf>,
    pub valid_files: Vec<PathBuf>,
}

impl Corpus {
    /// Loads files (directories are walked, sorted). Files given in `valid` form the validation
    /// split; if none are given, every tenth file of `data` (at least one) is held out.
    pub fn load(data: &[PathBuf], valid: &[PathBuf]) -> Result<Corpus> {
        let mut files = Vec::new();
        for p in data {
            collect(p, &mut files)?;
        }
        files.sort();
        let mut valid_files = Vec::new();
        for p in valid {
            collect(p, &mut valid_files)?;
        }
        valid_files.sort();
        files.retain(|f| !valid_files.contains(f));
        if valid_files.is_empty() {
            if files.len() < 2 {
                return Err(Error::InvalidSetting(
                    "need at least two data files to hold one out for validation, or --valid FILE"
                        .into(),
                ));
            }
            let held: Vec<PathBuf> = files
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 10 == 9 || (files.len() < 10 && *i == files.len() - 1))
                .map(|(_, f)| f.clone())
                .collect();
            files.retain(|f| !held.contains(f));
            valid_files = held;
        }
        let read_all = |fs: &[PathBuf]| -> Result<Vec<u8>> {
            let mut out = Vec::new();
            for f in fs {
                out.extend(std::fs::read(f).map_err(|e| {
                    Error::InvalidSetting(format!("cannot read {}: {e}", f.display()))
                })?);
            }
            Ok(out)
        };
        Ok(Corpus {
            train: read_all(&files)?,
            valid: read_all(&valid_files)?,
            train_files: files,
            valid_files,
        })
    }

    /// A corpus from bytes already in memory (tests).
    pub fn from_parts(train: Vec<u8>, valid: Vec<u8>) -> Corpus {
        Corpus {
            train,
            valid,
            train_files: Vec::new(),
            valid_files: Vec::new(),
        }
    }

    pub fn train(&self) -> &[u8] {
        &self.train
    }

    pub fn valid(&self) -> &[u8] {
        &self.valid
    }

    /// Up to `max` validation bytes, taken as evenly spaced slices so every validation file
    /// is represented.
    pub fn validation_sample(&self, max: usize) -> Vec<u8> {
        if self.valid.len() <= max {
            return self.valid.clone();
        }
        let pieces = 16;
        let piece = max / pieces;
        let stride = self.valid.len() / pieces;
        (0..pieces)
            .flat_map(|i| &self.valid[i * stride..i * stride + piece])
            .copied()
            .collect()
    }
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::InvalidSetting(format!("cannot read {}: {e}", path.display())))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            collect(&e, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}
