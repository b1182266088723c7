//! Training and validation text, split by file: validation bytes never come from a training file.
//!
//! A corpus read from disk is never loaded whole: training reads the few short windows each
//! batch needs with positioned reads (`read_at`), so a corpus larger than memory trains as well as
//! a small one, with the same results as if it had been read into memory (tested). Directory walks
//! follow symbolic links but visit each directory once, so a link loop ends, and they take only
//! regular files (a FIFO or device in the tree would block or never end).

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Bytes of one split: in memory, or files read on demand as one concatenated text.
enum Text {
    Memory(Vec<u8>),
    Files {
        /// Each file, opened once, with the offset of its first byte in the concatenation.
        files: Vec<(PathBuf, File, u64)>,
        len: u64,
    },
}

impl Text {
    fn open(paths: &[PathBuf]) -> Result<Text> {
        let mut files = Vec::with_capacity(paths.len());
        let mut len = 0u64;
        for p in paths {
            let fail = |e: std::io::Error| Error::file(p, e);
            let file = File::open(p).map_err(fail)?;
            let size = file.metadata().map_err(fail)?.len();
            if size > 0 {
                files.push((p.clone(), file, len));
                len += size;
            }
        }
        Ok(Text::Files { files, len })
    }

    fn len(&self) -> u64 {
        match self {
            Text::Memory(v) => v.len() as u64,
            Text::Files { len, .. } => *len,
        }
    }

    /// Fills `buf` with the bytes at `offset..offset + buf.len()` of the concatenation.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset + buf.len() as u64;
        if end > self.len() {
            return Err(Error::InvalidSetting(format!(
                "read past the end of the corpus ({end} > {})",
                self.len()
            )));
        }
        match self {
            Text::Memory(v) => buf.copy_from_slice(&v[offset as usize..end as usize]),
            Text::Files { files, .. } => {
                // The file holding `offset`, then its successors until `buf` is full.
                let first = files.partition_point(|(_, _, start)| *start <= offset) - 1;
                let mut filled = 0usize;
                for (path, file, start) in &files[first..] {
                    if filled == buf.len() {
                        break;
                    }
                    let at = offset + filled as u64 - start;
                    let n = read_file_at(file, &mut buf[filled..], at)
                        .map_err(|e| Error::file(path, e))?;
                    filled += n;
                }
                if filled < buf.len() {
                    return Err(Error::InvalidSetting(
                        "a corpus file shrank while training".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Reads as much of `buf` as the file holds from `at`; returns how many bytes that was.
fn read_file_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    #[cfg(unix)]
    use std::os::unix::fs::FileExt;
    #[cfg(windows)]
    use std::os::windows::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        #[cfg(unix)]
        let n = file.read_at(&mut buf[filled..], at + filled as u64)?;
        #[cfg(windows)]
        let n = file.seek_read(&mut buf[filled..], at + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Training and validation bytes.
pub struct Corpus {
    train: Text,
    valid: Text,
    /// Files in each split, for reports.
    pub train_files: Vec<PathBuf>,
    /// Files of the validation split.
    pub valid_files: Vec<PathBuf>,
}

impl Corpus {
    /// Opens files (directories are walked, sorted). Files given in `valid` form the validation
    /// split; if none are given, every tenth file of `data` (at least one) is held out.
    pub fn load(data: &[PathBuf], valid: &[PathBuf]) -> Result<Corpus> {
        let mut files = Vec::new();
        for p in data {
            collect(p, &mut files, &mut HashSet::new())?;
        }
        files.sort();
        files.dedup();
        let mut valid_files = Vec::new();
        for p in valid {
            collect(p, &mut valid_files, &mut HashSet::new())?;
        }
        valid_files.sort();
        valid_files.dedup();
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
        Ok(Corpus {
            train: Text::open(&files)?,
            valid: Text::open(&valid_files)?,
            train_files: files,
            valid_files,
        })
    }

    /// A corpus from bytes already in memory (tests).
    pub fn from_parts(train: Vec<u8>, valid: Vec<u8>) -> Corpus {
        Corpus {
            train: Text::Memory(train),
            valid: Text::Memory(valid),
            train_files: Vec::new(),
            valid_files: Vec::new(),
        }
    }

    /// Bytes of training text.
    pub fn train_len(&self) -> u64 {
        self.train.len()
    }

    /// Bytes of validation text.
    pub fn valid_len(&self) -> u64 {
        self.valid.len()
    }

    /// Fills `buf` with training bytes from `offset`.
    pub fn read_train(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.train.read_at(offset, buf)
    }

    /// Up to `max` validation bytes, taken as evenly spaced slices so every validation file
    /// is represented.
    pub fn validation_sample(&self, max: usize) -> Result<Vec<u8>> {
        let len = self.valid.len();
        if len <= max as u64 {
            let mut all = vec![0u8; len as usize];
            self.valid.read_at(0, &mut all)?;
            return Ok(all);
        }
        let pieces = 16u64;
        let piece = max as u64 / pieces;
        let stride = len / pieces;
        let mut out = vec![0u8; (pieces * piece) as usize];
        for (i, chunk) in out.chunks_mut(piece as usize).enumerate() {
            self.valid.read_at(i as u64 * stride, chunk)?;
        }
        Ok(out)
    }
}

/// Adds the regular files at or below `path` to `out`. `seen` holds the directories already
/// walked (canonical paths), so a symbolic-link loop is entered once.
fn collect(path: &Path, out: &mut Vec<PathBuf>, seen: &mut HashSet<PathBuf>) -> Result<()> {
    let fail = |e: std::io::Error| Error::file(path, e);
    let meta = std::fs::metadata(path).map_err(fail)?;
    if meta.is_dir() {
        if !seen.insert(std::fs::canonicalize(path).map_err(fail)?) {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(fail)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            match std::fs::metadata(&e) {
                Ok(m) if m.is_dir() => collect(&e, out, seen)?,
                Ok(m) if m.is_file() => out.push(e),
                // Dangling links, FIFOs, sockets, devices: not text to train on.
                _ => {}
            }
        }
    } else if meta.is_file() {
        out.push(path.to_path_buf());
    } else {
        return Err(Error::InvalidSetting(format!(
            "{} is neither a file nor a directory",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing file is a file error naming it, not an "invalid setting".
    #[test]
    fn unreadable_files_are_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        let Err(err) = Corpus::load(std::slice::from_ref(&missing), &[]) else {
            panic!("a missing file was accepted");
        };
        assert!(
            matches!(&err, Error::File { path, .. } if *path == missing),
            "{err:?}"
        );
        assert!(err.to_string().contains("nope.txt"), "{err}");
    }

    #[test]
    fn reads_across_file_boundaries_like_the_concatenation() {
        let dir = tempfile::tempdir().unwrap();
        let parts: [&[u8]; 4] = [b"alpha ", b"", b"beta gamma ", b"delta"];
        let mut all = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            std::fs::write(dir.path().join(format!("{i}.txt")), p).unwrap();
            all.extend_from_slice(p);
        }
        std::fs::write(dir.path().join("valid.txt"), b"held out").unwrap();
        let corpus =
            Corpus::load(&[dir.path().to_path_buf()], &[dir.path().join("valid.txt")]).unwrap();
        assert_eq!(corpus.train_len(), all.len() as u64);
        assert_eq!(corpus.validation_sample(100).unwrap(), b"held out");
        for start in 0..all.len() {
            for len in 0..=all.len() - start {
                let mut buf = vec![0u8; len];
                corpus.read_train(start as u64, &mut buf).unwrap();
                assert_eq!(buf, &all[start..start + len]);
            }
        }
        assert!(corpus
            .read_train(all.len() as u64 - 2, &mut [0u8; 3])
            .is_err());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_and_special_files_are_walked_once_or_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a.txt"), b"some text").unwrap();
        std::fs::write(d.join("b.txt"), b"more text").unwrap();
        // sub/up -> .. makes a loop; sub/again -> sub a second way in.
        std::os::unix::fs::symlink("..", d.join("sub/up")).unwrap();
        std::os::unix::fs::symlink(d.join("sub"), d.join("again")).unwrap();
        std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(d.join("pipe"))
            .status()
            .unwrap();
        assert!(fifo.success());
        let mut files = Vec::new();
        collect(d, &mut files, &mut HashSet::new()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["again/a.txt", "b.txt"]);
    }
}
