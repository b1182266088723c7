//! Inputs and outputs of the file commands, gzip/zstd style: `FILE` → `FILE.llmz` and back,
//! `-` for stdin/stdout, outputs written to a temporary file and renamed into place only on
//! success, existing files never overwritten without `-f`, inputs kept unless `--rm`.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tempfile::NamedTempFile;

/// Suffix of llmzip archives.
pub const SUFFIX: &str = "llmz";

/// Where data comes from.
#[derive(Debug, Clone)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn from_arg(p: &Path) -> Input {
        if p.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::File(p.to_path_buf())
        }
    }

    /// Name for messages.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".into(),
            Input::File(p) => p.display().to_string(),
        }
    }

    /// Opens the input; files must be regular files.
    pub fn open(&self) -> Result<(Box<dyn Read>, Option<u64>)> {
        match self {
            Input::Stdin => Ok((Box::new(io::stdin().lock()), None)),
            Input::File(p) => {
                let meta =
                    std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
                if meta.is_dir() {
                    bail!("{} is a directory", p.display());
                }
                let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
                Ok((
                    Box::new(BufReader::with_capacity(1 << 16, f)),
                    Some(meta.len()),
                ))
            }
        }
    }
}

/// Where data goes.
#[derive(Debug, Clone)]
pub enum Output {
    Stdout,
    File(PathBuf),
}

impl Output {
    pub fn name(&self) -> String {
        match self {
            Output::Stdout => "<stdout>".into(),
            Output::File(p) => p.display().to_string(),
        }
    }
}

/// The output path for compressing `input`: `FILE.llmz`.
pub fn compressed_name(input: &Path) -> PathBuf {
    let mut s = input.as_os_str().to_owned();
    s.push(".");
    s.push(SUFFIX);
    PathBuf::from(s)
}

/// The output path for decompressing `input`: the name without `.llmz`.
pub fn decompressed_name(input: &Path) -> Result<PathBuf> {
    match input.extension() {
        Some(ext) if ext == SUFFIX && input.file_stem().is_some_and(|s| !s.is_empty()) => {
            Ok(input.with_extension(""))
        }
        _ => bail!(
            "{} does not end in .{SUFFIX}; name the output with -o or use -c",
            input.display()
        ),
    }
}

/// An output being written: a temporary file next to the destination, stdout, or an existing
/// special file (a device such as `/dev/null`, a FIFO) that is written in place, because
/// renaming over it would replace the device with a regular file.
pub enum Sink {
    Stdout(io::StdoutLock<'static>),
    Special(BufWriter<File>),
    Temp {
        file: BufWriter<NamedTempFile>,
        dest: PathBuf,
        force: bool,
    },
}

impl Sink {
    /// Prepares writing to `output`. Refuses early if the destination exists and `force` is off,
    /// before any work is done.
    pub fn create(output: &Output, force: bool) -> Result<Sink> {
        match output {
            Output::Stdout => Ok(Sink::Stdout(io::stdout().lock())),
            Output::File(dest) => {
                if let Ok(meta) = std::fs::metadata(dest) {
                    if !meta.is_file() && !meta.is_dir() {
                        let f = std::fs::OpenOptions::new()
                            .write(true)
                            .open(dest)
                            .with_context(|| format!("cannot open {}", dest.display()))?;
                        return Ok(Sink::Special(BufWriter::new(f)));
                    }
                    if meta.is_dir() {
                        bail!("{} is a directory", dest.display());
                    }
                }
                if !force && dest.exists() {
                    bail!("{} already exists; use -f to overwrite it", dest.display());
                }
                let dir = match dest.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let tmp = tempfile::Builder::new()
                    .prefix(".llmzip-")
                    .suffix(".tmp")
                    .tempfile_in(dir)
                    .with_context(|| format!("cannot create a file in {}", dir.display()))?;
                Ok(Sink::Temp {
                    file: BufWriter::with_capacity(1 << 16, tmp),
                    dest: dest.clone(),
                    force,
                })
            }
        }
    }

    pub fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(s) => s,
            Sink::Special(f) => f,
            Sink::Temp { file, .. } => file,
        }
    }

    /// Makes the output visible: flushes, syncs and renames the temporary file into place.
    /// The output takes the permissions of `permissions_from` (the input file; an archive carries
    /// its original's mode that way), or ordinary 0644 for data from stdin rather than the
    /// temporary file's private 0600. Dropping a `Sink` without calling this deletes the
    /// temporary file.
    pub fn commit(self, permissions_from: Option<&Path>) -> Result<()> {
        match self {
            Sink::Stdout(mut s) => Ok(s.flush()?),
            Sink::Special(mut f) => Ok(f.flush()?),
            Sink::Temp { file, dest, force } => {
                let tmp = file.into_inner().map_err(|e| e.into_error())?;
                tmp.as_file().sync_all()?;
                match permissions_from.and_then(|src| std::fs::metadata(src).ok()) {
                    Some(meta) => {
                        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
                    }
                    None => {
                        #[cfg(unix)]
                        {
                            use std::os::unix::fs::PermissionsExt;
                            let mode = std::fs::Permissions::from_mode(0o644);
                            let _ = std::fs::set_permissions(tmp.path(), mode);
                        }
                    }
                }
                let result = if force {
                    tmp.persist(&dest).map(|_| ())
                } else {
                    tmp.persist_noclobber(&dest).map(|_| ())
                };
                result.map_err(|e| anyhow::anyhow!("cannot write {}: {}", dest.display(), e.error))
            }
        }
    }
}

/// True when writing binary data to `output` would spray it over a terminal.
pub fn is_terminal_stdout(output: &Output) -> bool {
    matches!(output, Output::Stdout) && io::stdout().is_terminal()
}
