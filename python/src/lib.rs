//! `llmzip._llmzip`: the native half of the Python package (the `llmzip` package in
//! python/llmzip wraps it with `open`, file helpers and `llmzip.ray`).
//!
//! Every call that codes data releases the GIL (`Python::detach`) and runs on a worker of
//! rayon's pool (`llmzip::unstable::pool::on_a_worker`: the models' parallel steps are much
//! cheaper there), so Python threads code in parallel up to the pool's size (all cores, or
//! `RAYON_NUM_THREADS`); beyond it a call may wait for another to finish. Errors become Python exceptions that
//! carry the library's message: `CorruptError` for damaged or foreign data, `ModelError` when
//! the model an archive needs is missing or different, `OSError` for files, `ValueError` for
//! bad arguments, all but the last two subclasses of `LlmzipError`.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::Mutex;

use llmzip::unstable::pool::on_a_worker;
use llmzip::{Error, Level, Options, Session, Silent};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

create_exception!(
    llmzip,
    LlmzipError,
    PyException,
    "An llmzip failure (the message says what to do next)."
);
create_exception!(
    llmzip,
    CorruptError,
    LlmzipError,
    "The data is not an llmzip archive, or is damaged or cut short."
);
create_exception!(
    llmzip,
    ModelError,
    LlmzipError,
    "The model an archive needs is missing, different, or cannot be loaded."
);

/// The Python exception for a library error, with its message.
fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Io(_) | Error::File { .. } => PyOSError::new_err(message),
        Error::NotAnArchive
        | Error::UnsupportedVersion { .. }
        | Error::Truncated(_)
        | Error::Corrupt(_)
        | Error::MachineBound(_) => CorruptError::new_err(message),
        Error::ModelMismatch { .. }
        | Error::BackendMismatch { .. }
        | Error::TokenizerMismatch { .. }
        | Error::Model(_)
        | Error::Candle(_) => ModelError::new_err(message),
        Error::InvalidSetting(_) => PyValueError::new_err(message),
        Error::Interrupted => PyKeyboardInterrupt::new_err(message),
        _ => LlmzipError::new_err(message),
    }
}

/// An I/O error from a reader or writer that wraps a library error: the library's exception.
fn io_to_py(e: io::Error) -> PyErr {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        let inner = e.into_inner().expect("checked above");
        return to_py(*inner.downcast::<Error>().expect("checked above"));
    }
    to_py(Error::Io(e))
}

/// Runs `code` with the GIL released and returns its bytes to Python.
fn bytes_out<'py>(
    py: Python<'py>,
    code: impl FnOnce() -> llmzip::Result<Vec<u8>> + Send,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = py.detach(|| on_a_worker(code)).map_err(to_py)?;
    Ok(PyBytes::new(py, &out))
}

/// Locks `mutex` on the calling thread, then runs `work` on it on a rayon worker. The lock is
/// taken outside the pool on purpose: a worker that waits inside a parallel step may pick up
/// another queued job, and a job that then waited for this lock would stall the worker holding
/// it (two Python threads sharing one object would deadlock).
fn with_locked<T: Send, R: Send>(mutex: &Mutex<T>, work: impl FnOnce(&mut T) -> R + Send) -> R {
    let mut guard = mutex.lock().expect("not poisoned");
    let inner: &mut T = &mut guard;
    on_a_worker(move || work(inner))
}

/// Options from keyword arguments (a level or a model, not both).
fn options(
    level: Option<u32>,
    model: Option<String>,
    members: Option<u64>,
    block_size: Option<u64>,
    memory_limit: Option<u64>,
) -> PyResult<Options> {
    let mut o = Options::default();
    match (level, model) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "give a level or a model, not both (a level names its own model)",
            ))
        }
        (Some(l), None) => o = o.level(Level::new(l).map_err(to_py)?),
        (None, Some(m)) => o = o.model(m.as_str()),
        (None, None) => {}
    }
    if let Some(m) = members {
        if m == 0 {
            return Err(PyValueError::new_err("members must be at least 1 byte"));
        }
        o = o.members(m);
    }
    if let Some(b) = block_size {
        o = o.block_size(b);
    }
    if let Some(m) = memory_limit {
        o = o.memory_limit(m);
    }
    Ok(o)
}

/// compress(data, level=None, model=None, members=None, block_size=None) -> bytes
///
/// Compresses bytes into an archive: at `level` (1-9, default 6) or with `model`; `members`
/// cuts the input into independent members of that many bytes, with a seek table. Weight files
/// (safetensors, GGUF) are recognised and get the weight-file codec.
#[pyfunction]
#[pyo3(signature = (data, level=None, model=None, members=None, block_size=None))]
fn compress<'py>(
    py: Python<'py>,
    data: Cow<'_, [u8]>,
    level: Option<u32>,
    model: Option<String>,
    members: Option<u64>,
    block_size: Option<u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let options = options(level, model, members, block_size, None)?;
    bytes_out(py, || llmzip::encode_all(&data[..], &options))
}

/// decompress(data, model=None, memory_limit=None) -> bytes
///
/// Decodes an archive (all its members). `model` is needed only for archives of a model loaded
/// from a path.
#[pyfunction]
#[pyo3(signature = (data, model=None, memory_limit=None))]
fn decompress<'py>(
    py: Python<'py>,
    data: Cow<'_, [u8]>,
    model: Option<String>,
    memory_limit: Option<u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let options = options(None, model, None, None, memory_limit)?;
    bytes_out(py, || {
        let mut out = Vec::new();
        Session::new(options).decompress(&mut &data[..], &mut out, &mut Silent)?;
        Ok(out)
    })
}

/// compress_file(src, dst, level=None, model=None, members=None, block_size=None, base=None)
///     -> (original bytes, archive bytes)
///
/// Streams file `src` into archive `dst` (created or truncated; `llmzip.compress_file` wraps
/// this with a temporary file and a rename). `base`: a weight file `src` was fine-tuned from.
#[pyfunction]
#[pyo3(signature = (src, dst, level=None, model=None, members=None, block_size=None, base=None))]
#[allow(clippy::too_many_arguments)]
fn compress_file(
    py: Python<'_>,
    src: std::path::PathBuf,
    dst: std::path::PathBuf,
    level: Option<u32>,
    model: Option<String>,
    members: Option<u64>,
    block_size: Option<u64>,
    base: Option<std::path::PathBuf>,
) -> PyResult<(u64, u64)> {
    let mut options = options(level, model, members, block_size, None)?;
    if let Some(b) = base {
        options = options.base(b);
    }
    py.detach(|| -> llmzip::Result<(u64, u64)> {
        let (lens, output) = on_a_worker(|| -> llmzip::Result<_> {
            let input = File::open(&src).map_err(|e| file_error(&src, e))?;
            let len = input.metadata()?.len();
            let mut output = BufWriter::new(File::create(&dst).map_err(|e| file_error(&dst, e))?);
            let report = Session::new(options).compress(
                &mut BufReader::new(input),
                Some(len),
                &mut output,
                &mut Silent,
            )?;
            Ok(((report.original_len(), report.archive_len()), output))
        })?;
        synced(output)?;
        Ok(lens)
    })
    .map_err(to_py)
}

/// decompress_file(src, dst, model=None, memory_limit=None, base=None)
///     -> (archive bytes, original bytes)
///
/// Streams archive `src` into file `dst` (created or truncated). `base`: the weight file a
/// fine-tune was compressed against.
#[pyfunction]
#[pyo3(signature = (src, dst, model=None, memory_limit=None, base=None))]
fn decompress_file(
    py: Python<'_>,
    src: std::path::PathBuf,
    dst: std::path::PathBuf,
    model: Option<String>,
    memory_limit: Option<u64>,
    base: Option<std::path::PathBuf>,
) -> PyResult<(u64, u64)> {
    let mut options = options(None, model, None, None, memory_limit)?;
    if let Some(b) = base {
        options = options.base(b);
    }
    py.detach(|| -> llmzip::Result<(u64, u64)> {
        let (lens, output) = on_a_worker(|| -> llmzip::Result<_> {
            let input = File::open(&src).map_err(|e| file_error(&src, e))?;
            let mut output = BufWriter::new(File::create(&dst).map_err(|e| file_error(&dst, e))?);
            let report = Session::new(options).decompress(
                &mut BufReader::new(input),
                &mut output,
                &mut Silent,
            )?;
            Ok(((report.archive_len(), report.original_len()), output))
        })?;
        synced(output)?;
        Ok(lens)
    })
    .map_err(to_py)
}

/// Flushes and syncs a finished output on the calling thread (not on a pool worker, which
/// would sit idle while the disk works).
fn synced(mut output: BufWriter<File>) -> llmzip::Result<()> {
    output.flush()?;
    output.get_ref().sync_all()?;
    Ok(())
}

fn file_error(path: &std::path::Path, e: io::Error) -> Error {
    Error::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// members(path) -> list of (archive offset, archive bytes, original offset, original bytes)
///
/// Where each member of an archive file lies, from its seek table (checked) or by reading
/// through it without decoding.
#[pyfunction]
fn members(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Vec<(u64, u64, u64, u64)>> {
    py.detach(|| -> llmzip::Result<_> {
        let mut file = File::open(&path).map_err(|e| file_error(&path, e))?;
        Ok(llmzip::members(&mut file)?
            .into_iter()
            .map(|m| {
                (
                    m.archive_offset,
                    m.archive_len,
                    m.original_offset,
                    m.original_len,
                )
            })
            .collect())
    })
    .map_err(to_py)
}

/// seek_table(entries) -> bytes
///
/// The seek table for members of the given (archive bytes, original bytes), in order: what to
/// write after members assembled by hand (as `llmzip.ray` does) for a file that
/// `compress --members` would have written.
#[pyfunction]
fn seek_table<'py>(py: Python<'py>, entries: Vec<(u64, u64)>) -> PyResult<Bound<'py, PyBytes>> {
    let table = llmzip::unstable::format::seek::SeekTable {
        entries: entries
            .into_iter()
            .map(
                |(archive_len, original_len)| llmzip::unstable::format::seek::Entry {
                    archive_len,
                    original_len,
                },
            )
            .collect(),
    };
    match table.to_bytes() {
        Some(bytes) => Ok(PyBytes::new(py, &bytes)),
        None => Err(PyValueError::new_err(
            "too many members for a seek table (at most 16 MiB of table): write none, readers \
             walk the members",
        )),
    }
}

/// Reader(path, model=None, memory_limit=None): the original of an archive file, readable and
/// seekable; reads decode only the members they touch. `llmzip.open(path, "rb")` wraps it.
#[pyclass(module = "llmzip._llmzip")]
struct Reader {
    inner: Mutex<llmzip::SeekableDecoder<BufReader<File>>>,
    len: u64,
}

#[pymethods]
impl Reader {
    #[new]
    #[pyo3(signature = (path, model=None, memory_limit=None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        model: Option<String>,
        memory_limit: Option<u64>,
    ) -> PyResult<Self> {
        let options = options(None, model, None, None, memory_limit)?;
        let decoder = py
            .detach(|| -> llmzip::Result<_> {
                let file = File::open(&path).map_err(|e| file_error(&path, e))?;
                llmzip::SeekableDecoder::with_options(BufReader::new(file), &options)
            })
            .map_err(to_py)?;
        let len = decoder.len();
        Ok(Reader {
            inner: Mutex::new(decoder),
            len,
        })
    }

    /// Bytes of the whole original.
    #[getter]
    fn length(&self) -> u64 {
        self.len
    }

    /// Reads up to `size` bytes (all that is left when negative) from the position.
    #[pyo3(signature = (size=-1))]
    fn read<'py>(&self, py: Python<'py>, size: i64) -> PyResult<Bound<'py, PyBytes>> {
        let out = py
            .detach(|| {
                with_locked(&self.inner, |d| -> io::Result<Vec<u8>> {
                    let mut out = Vec::new();
                    match u64::try_from(size) {
                        Ok(n) => d.take(n).read_to_end(&mut out)?,
                        Err(_) => d.read_to_end(&mut out)?,
                    };
                    Ok(out)
                })
            })
            .map_err(io_to_py)?;
        Ok(PyBytes::new(py, &out))
    }

    /// Moves the position (whence: 0 from the start, 1 from the position, 2 from the end).
    #[pyo3(signature = (offset, whence=0))]
    fn seek(&self, offset: i64, whence: i32) -> PyResult<u64> {
        let to = match whence {
            0 => SeekFrom::Start(
                u64::try_from(offset)
                    .map_err(|_| PyValueError::new_err("negative seek position"))?,
            ),
            1 => SeekFrom::Current(offset),
            2 => SeekFrom::End(offset),
            _ => return Err(PyValueError::new_err("whence must be 0, 1 or 2")),
        };
        let mut d = self.inner.lock().expect("not poisoned");
        d.seek(to).map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

/// Writer(path, level=None, model=None, block_size=None): compresses what is written into
/// `path` (one member); `close()` writes the archive's end. `llmzip.open(path, "wb")` wraps it
/// with a temporary file and a rename.
#[pyclass(module = "llmzip._llmzip")]
struct Writer {
    inner: Mutex<Option<llmzip::Encoder<BufWriter<File>>>>,
}

#[pymethods]
impl Writer {
    #[new]
    #[pyo3(signature = (path, level=None, model=None, block_size=None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        level: Option<u32>,
        model: Option<String>,
        block_size: Option<u64>,
    ) -> PyResult<Self> {
        let options = options(level, model, None, block_size, None)?;
        let encoder = py
            .detach(|| -> llmzip::Result<_> {
                let file = File::create(&path).map_err(|e| file_error(&path, e))?;
                llmzip::Encoder::new(BufWriter::new(file), &options)
            })
            .map_err(to_py)?;
        Ok(Writer {
            inner: Mutex::new(Some(encoder)),
        })
    }

    /// Compresses `data`; returns its length.
    fn write(&self, py: Python<'_>, data: Cow<'_, [u8]>) -> PyResult<usize> {
        py.detach(|| {
            with_locked(&self.inner, |encoder| -> io::Result<usize> {
                let encoder = encoder
                    .as_mut()
                    .ok_or_else(|| io::Error::other("write to a closed llmzip writer"))?;
                encoder.write_all(&data)?;
                Ok(data.len())
            })
        })
        .map_err(io_to_py)
    }

    /// Writes the archive's end and closes the file (again: nothing).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| -> llmzip::Result<()> {
            let finished = with_locked(&self.inner, |encoder| {
                encoder.take().map(|e| e.finish()).transpose()
            })?;
            finished.map_or(Ok(()), synced)
        })
        .map_err(to_py)
    }

    /// Drops the archive without writing its end (after an error: the caller removes the file).
    fn abandon(&self) {
        let mut guard = self.inner.lock().expect("not poisoned");
        if let Some(encoder) = guard.take() {
            encoder.abandon();
        }
    }
}

/// Coder(level=None, model=None, block_size=None, memory_limit=None): compresses and
/// decompresses many inputs with one set of options, loading each model once (what an actor of
/// `llmzip.ray` holds). `compress` writes one member: inputs are coded by the model whatever
/// their content (no weight-file recognition), so that a piece of a file codes exactly as
/// `llmzip compress --members` codes it.
#[pyclass(module = "llmzip._llmzip")]
struct Coder {
    session: Mutex<Session>,
}

#[pymethods]
impl Coder {
    #[new]
    #[pyo3(signature = (level=None, model=None, block_size=None, memory_limit=None))]
    fn new(
        level: Option<u32>,
        model: Option<String>,
        block_size: Option<u64>,
        memory_limit: Option<u64>,
    ) -> PyResult<Self> {
        let options = options(level, model, None, block_size, memory_limit)?;
        Ok(Coder {
            session: Mutex::new(Session::new(options)),
        })
    }

    /// Loads the model now (otherwise on first use); says nothing about decoding models.
    fn prepare(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| with_locked(&self.session, |session| session.prepare().map(drop)))
            .map_err(to_py)
    }

    /// One member holding `data`.
    fn compress<'py>(&self, py: Python<'py>, data: Cow<'_, [u8]>) -> PyResult<Bound<'py, PyBytes>> {
        let out = py
            .detach(|| {
                with_locked(&self.session, |session| -> llmzip::Result<Vec<u8>> {
                    let mut out = Vec::new();
                    session.compress(&mut &data[..], None, &mut out, &mut Silent)?;
                    Ok(out)
                })
            })
            .map_err(to_py)?;
        Ok(PyBytes::new(py, &out))
    }

    /// The original of an archive (all its members).
    fn decompress<'py>(
        &self,
        py: Python<'py>,
        data: Cow<'_, [u8]>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let out = py
            .detach(|| {
                with_locked(&self.session, |session| -> llmzip::Result<Vec<u8>> {
                    let mut out = Vec::new();
                    session.decompress(&mut &data[..], &mut out, &mut Silent)?;
                    Ok(out)
                })
            })
            .map_err(to_py)?;
        Ok(PyBytes::new(py, &out))
    }
}

/// The native module.
#[pymodule]
fn _llmzip(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("LlmzipError", m.py().get_type::<LlmzipError>())?;
    m.add("CorruptError", m.py().get_type::<CorruptError>())?;
    m.add("ModelError", m.py().get_type::<ModelError>())?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(decompress, m)?)?;
    m.add_function(wrap_pyfunction!(compress_file, m)?)?;
    m.add_function(wrap_pyfunction!(decompress_file, m)?)?;
    m.add_function(wrap_pyfunction!(members, m)?)?;
    m.add_function(wrap_pyfunction!(seek_table, m)?)?;
    m.add_class::<Reader>()?;
    m.add_class::<Writer>()?;
    m.add_class::<Coder>()?;
    Ok(())
}
