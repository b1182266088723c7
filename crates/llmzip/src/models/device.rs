//! Where a model computes, and how an archive names that place.
//!
//! Neural models compute in floating point, and floating-point results depend on the kernels
//! that compute them. An archive therefore records its [`Backend`]: device, dtype and a
//! *platform* string, and [`archive_portability`] says from those which machines can decode it:
//!
//! - **Any CPU** ([`Portability::AnyCpu`]): the recurrent models and the llama networks in the
//!   `int8` and `f32-portable` formats run on llmzip's own kernels, whose order of operations is
//!   fixed in the source (never by a vector width, a cache size or a thread count; fused
//!   multiply-adds computed exactly where the CPU has none) and whose `exp`/`tanh` are llmzip's
//!   (for `gru`/`gru2`, bit-exact replicas of the glibc functions they were made with).
//!   Their archives decode on every x86-64 machine (scripts/cross-cpu.sh checks the golden
//!   archives under emulated CPUs without AVX-512, or without AVX and FMA) and, by construction,
//!   on aarch64 (built, not yet run: docs/format.md). The platform string is informational.
//! - **Machine-bound** ([`Portability::MachineBound`]): transformers computed by candle's CPU
//!   kernels (`f32` and `q8_0` llamas and GPT-2 of earlier releases, a GGUF file's own format).
//!   candle's matrix products block their sums by the CPU's cache sizes and pick SIMD code at
//!   run time, so two CPUs of the same family can round differently (an archive made on one AMD
//!   EPYC failed on an Intel Xeon, both `x86_64+avx512`). Such archives decode where they were
//!   made; elsewhere a failed check is reported as that, not as corruption. So are archives of
//!   byte models of your own written by llmzip 0.1.0 (see [`archive_portability`]).
//! - **Exact platform** (GPUs): the platform adds the GPU's identity: name, compute capability,
//!   driver and cuBLAS versions. A difference there is refused *before* decoding (see
//!   [`Backend::must_match_exactly`]), because nothing guarantees two GPUs round alike.
//!
//! Opening a CUDA device never panics and never needs a CUDA library to *start* the program: the
//! CUDA build loads libcuda, cuBLAS and cuRAND at run time (scripts/build-cuda.sh), and
//! [`device`] first checks that they can be found, so a machine without a GPU gets a message that
//! says what is missing.

use candle_core::Device;

use crate::format::Backend;
use crate::{Error, Result};

impl Backend {
    /// Describes the backend of `device` computing in `dtype` on this machine.
    pub fn of(device: &Device, dtype: &str) -> Backend {
        let (name, platform) = match device {
            Device::Cpu => ("cpu", platform()),
            Device::Cuda(_gpu) => {
                #[cfg(feature = "cuda")]
                let gpu = cuda::identity(_gpu);
                #[cfg(not(feature = "cuda"))]
                let gpu = String::from("GPU");
                ("cuda", format!("{} + {gpu}", platform()))
            }
            Device::Metal(_) => ("metal", format!("{} + Metal", platform())),
        };
        Backend {
            device: name.into(),
            dtype: dtype.into(),
            platform,
        }
    }

    /// Whether an archive made on this backend decodes only where the platform is the same,
    /// checked before decoding: true for GPUs, whose results depend on the GPU and its software.
    pub fn must_match_exactly(&self) -> bool {
        self.device != "cpu"
    }
}

/// Which machines can decode an archive, from its header alone ([`Backend`] and tokenizer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Portability {
    /// Every CPU: llmzip's own kernels.
    AnyCpu,
    /// The machine that made it (or one whose CPU rounds candle's kernels alike).
    MachineBound,
    /// The same GPU, driver and libraries, checked before decoding.
    ExactPlatform,
}

/// The weight formats of token models computed by llmzip's own CPU kernels.
pub const PORTABLE_DTYPES: [&str; 3] = [INT8_KV8, "int8", F32_PORTABLE];

/// The dtype of llamas with int8 weights and an 8-bit KV cache (`models/kv8.rs`): the CPU
/// default since it was introduced; `int8` archives (an f32 cache) keep decoding.
pub const INT8_KV8: &str = "int8-kv8";

/// The dtype of transformers in f32 on llmzip's own CPU kernels (`--dtype f32` on the CPU since
/// their introduction; `f32` in a CPU archive's header is candle's, machine-bound).
pub const F32_PORTABLE: &str = "f32-portable";

/// Which machines decode an archive of `backend` with tokenizer `tokenizer`.
pub fn portability(backend: &Backend, tokenizer: &str) -> Portability {
    if backend.must_match_exactly() {
        Portability::ExactPlatform
    } else if tokenizer == crate::tokenization::BYTES_ID
        || PORTABLE_DTYPES.contains(&backend.dtype.as_str())
    {
        // Byte-level models are the recurrent ones, on llmzip's own kernels.
        Portability::AnyCpu
    } else {
        Portability::MachineBound
    }
}

/// Which machines decode an existing archive, from its header: [`portability`], except that
/// archives of byte models other than the built-in GRUs written by llmzip 0.1.0 (before the
/// portable kernels) are machine-bound. That release computed a model of your own with candle's
/// matrix products, which split sums over more than 512 inputs into blocks sized by the CPU's
/// caches, and, for a model without portable activations, with the C library's `expf`/`tanhf`
/// of the machine that made it; llmzip reproduces those exactly only for the built-in GRUs (and
/// for other models whose layers are at most 512 wide, made with glibc 2.36 on x86-64 with FMA).
pub fn archive_portability(header: &crate::format::Header) -> Portability {
    let made_before_portable_kernels = header.writer == "llmzip 0.1.0";
    if made_before_portable_kernels
        && header.tokenizer == crate::tokenization::BYTES_ID
        && !header.backend.must_match_exactly()
        && !super::is_embedded_byte_model(&header.model_name)
    {
        return Portability::MachineBound;
    }
    portability(&header.backend, &header.tokenizer)
}

impl Portability {
    /// One line for `llmzip info`.
    pub fn describe(self) -> &'static str {
        match self {
            Portability::AnyCpu => {
                "any CPU (llmzip's own kernels, one order of operations everywhere)"
            }
            Portability::MachineBound => {
                "the machine that made it (kernels whose rounding depends on the CPU; \
                 docs/format.md, \"Portability\")"
            }
            Portability::ExactPlatform => "the same GPU, driver and libraries only",
        }
    }
}

/// The CPU family (`x86_64+avx512`, `x86_64+avx2+fma`, `x86_64+sse`; the architecture
/// elsewhere), recorded in headers: informational for portable CPU archives, where it says where
/// a machine-bound one was made.
pub fn platform() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let level = if std::arch::is_x86_feature_detected!("avx512f") {
            "avx512"
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            "avx2+fma"
        } else {
            "sse"
        };
        format!("x86_64+{level}")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// Parses a `--device` value into a candle device.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => open_cuda(),
        "metal" => Device::new_metal(0).map_err(|e| {
            Error::InvalidSetting(format!(
                "cannot use Metal ({}); llmzip must be built with `--features metal` on macOS \
                 (or use --device cpu)",
                crate::error::candle_message(&e)
            ))
        }),
        other => Err(Error::InvalidSetting(format!(
            "unknown device '{other}' (use cpu, cuda or metal)"
        ))),
    }
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<Device> {
    Err(Error::InvalidSetting(
        "this llmzip was built without CUDA support: use --device cpu, or build the CUDA binary \
         with scripts/build-cuda.sh"
            .into(),
    ))
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<Device> {
    cuda::open()
}

#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::cuda_backend::cudarc;
    use candle_core::{CudaDevice, Device};

    use crate::{Error, Result};

    /// The libraries opening a device loads, with the names they go by on Linux: a subset of the
    /// names cudarc tries, so what is found here cudarc finds too.
    const LIBRARIES: [(&str, &str); 3] = [
        ("cuda", "the NVIDIA driver library"),
        ("cublas", "cuBLAS"),
        ("curand", "cuRAND"),
    ];

    fn present(lib: &str) -> bool {
        let names = [
            format!("lib{lib}.so.1"),
            format!("lib{lib}.so"),
            format!("lib{lib}.so.13"),
            format!("lib{lib}.so.12"),
            format!("lib{lib}.so.11"),
            format!("lib{lib}.so.10"),
        ];
        // SAFETY: loading a shared library runs its initialisers; these are NVIDIA's own
        // libraries, loaded exactly as cudarc is about to load them.
        names
            .iter()
            .any(|n| unsafe { libloading::Library::new(n) }.is_ok())
    }

    pub(super) fn open() -> Result<Device> {
        for (lib, what) in LIBRARIES {
            if !present(lib) {
                return Err(Error::InvalidSetting(format!(
                    "--device cuda: {what} (lib{lib}.so) was not found, so no GPU can be used \
                     on this machine; install the NVIDIA driver and CUDA libraries (or put \
                     their folder on LD_LIBRARY_PATH), or use --device cpu"
                )));
            }
        }
        Device::new_cuda(0).map_err(|e| {
            Error::InvalidSetting(format!(
                "--device cuda: the NVIDIA driver opened no GPU ({}); check that a GPU is \
                 visible (nvidia-smi) and its kernel driver is loaded, or use --device cpu",
                crate::error::candle_message(&e)
            ))
        })
    }

    /// `<name> sm_<cc> driver <version> cublas <version>`: what decides a GPU's rounding.
    pub(super) fn identity(gpu: &CudaDevice) -> String {
        let stream = gpu.cuda_stream();
        let context = stream.context();
        let name = context.name().unwrap_or_else(|_| "unknown GPU".into());
        let (major, minor) = context.compute_capability().unwrap_or((0, 0));
        let mut driver = 0;
        let mut blas = 0;
        // SAFETY: plain queries into integers we own, on a device and handle that are open.
        unsafe {
            let _ = cudarc::driver::sys::cuDriverGetVersion(&mut driver);
            let _ =
                cudarc::cublas::sys::cublasGetVersion_v2(*gpu.cublas_handle().handle(), &mut blas);
        }
        let id = format!(
            "{name} sm_{major}{minor} driver {}.{} cublas {}.{}.{}",
            driver / 1000,
            driver % 1000 / 10,
            blas / 10000,
            blas % 10000 / 100,
            blas % 100
        );
        // The header stores at most 255 bytes of platform, the CPU part included.
        id.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portability_follows_who_computes_the_probabilities() {
        let cpu = |dtype: &str| Backend {
            device: "cpu".into(),
            dtype: dtype.into(),
            platform: "x86_64+avx512".into(),
        };
        let bpe = "bpe49152-118e2e0c2f247173";
        assert_eq!(portability(&cpu("f32"), "bytes"), Portability::AnyCpu);
        assert_eq!(portability(&cpu("int8"), bpe), Portability::AnyCpu);
        assert_eq!(portability(&cpu(F32_PORTABLE), bpe), Portability::AnyCpu);
        for dtype in ["f32", "q8_0", "q4_1"] {
            assert_eq!(portability(&cpu(dtype), bpe), Portability::MachineBound);
        }
        let gpu = Backend {
            device: "cuda".into(),
            ..cpu(F32_PORTABLE)
        };
        assert_eq!(portability(&gpu, "bytes"), Portability::ExactPlatform);
    }

    #[test]
    fn byte_models_of_your_own_from_0_1_0_are_machine_bound() {
        let mut header = crate::format::Header {
            writer: "llmzip 0.1.0".into(),
            model_name: "gru2-cm4".into(),
            fingerprint: crate::format::Fingerprint::of(&[b"test"]),
            tokenizer: "bytes".into(),
            backend: Backend {
                device: "cpu".into(),
                dtype: "f32".into(),
                platform: "x86_64+avx512".into(),
            },
            schedule: crate::codec::Schedule {
                block_size: 1 << 20,
                max_segments: 1,
                min_segment_tokens: 1,
                window: 0,
            },
        };
        assert_eq!(
            archive_portability(&header),
            Portability::AnyCpu,
            "built in"
        );
        header.model_name = "my-model-cm5".into();
        assert_eq!(archive_portability(&header), Portability::MachineBound);
        header.writer = "llmzip 0.2.0".into();
        assert_eq!(
            archive_portability(&header),
            Portability::AnyCpu,
            "portable kernels"
        );
        header.writer = "llmzip 0.1.0".into();
        header.backend.device = "cuda".into();
        assert_eq!(archive_portability(&header), Portability::ExactPlatform);
    }
}
